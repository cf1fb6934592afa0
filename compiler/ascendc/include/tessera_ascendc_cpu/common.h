// Tessera CPU build of the Ascend C API subset: common definitions.
//
// This file is an independent implementation written for Tessera. It reproduces the
// public *names* of the CANN 8.x Ascend C API (so that kernels written for CANN compile
// unchanged with g++ -DASCENDC_CPU_DEBUG), not its text.
//
// Contents: empty device qualifiers, the error reporter, the software half/bfloat16_t
// types with IEEE round-to-nearest-even conversions, the global enums of the CPU-debug
// framework (pipe_t, event_t, QuantMode_t, KernelMode, KERNEL_TYPE_*), and the AscendC
// enums and parameter structs (field order = CANN 8.1 order).
#ifndef TESSERA_ASCENDC_CPU_COMMON_H
#define TESSERA_ASCENDC_CPU_COMMON_H

#if __cplusplus < 201703L
#error "the Tessera Ascend C CPU build needs C++17 (-std=c++17)"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

// ---------------------------------------------------------------------------------------
// Device qualifiers: empty on the CPU, as in CANN's CPU-debug mode.
// ---------------------------------------------------------------------------------------
#ifndef __global__
#define __global__
#endif
#ifndef __aicore__
#define __aicore__
#endif
#ifndef __gm__
#define __gm__
#endif
#ifndef __ubuf__
#define __ubuf__
#endif
#ifndef __cbuf__
#define __cbuf__
#endif
#ifndef __ca__
#define __ca__
#endif
#ifndef __cb__
#define __cb__
#endif
#ifndef __cc__
#define __cc__
#endif
#ifndef __fbuf__
#define __fbuf__
#endif
#ifndef __BLOCK_LOCAL__
#define __BLOCK_LOCAL__
#endif
#ifndef __WORKGROUP_LOCAL__
#define __WORKGROUP_LOCAL__
#endif
#ifndef __sync_alias__
#define __sync_alias__
#endif
#ifndef __sync_noalias__
#define __sync_noalias__
#endif
#ifndef __inout_pipe__
#define __inout_pipe__(...)
#endif
#ifndef __in_pipe__
#define __in_pipe__(...)
#endif
#ifndef __out_pipe__
#define __out_pipe__(...)
#endif
#ifndef GM_ADDR
#define GM_ADDR __gm__ uint8_t*
#endif

namespace tessera_ascendc_cpu {

// ---------------------------------------------------------------------------------------
// Error reporting: every misuse the hardware would not survive ends here.
// ---------------------------------------------------------------------------------------

/// Concatenates its arguments with operator<<.
template <typename... A>
inline std::string Str(const A&... a)
{
    std::ostringstream os;
    (os << ... << a);
    return os.str();
}

/// Describes the running kernel instance ("kernel add_custom, core 3 of 8 (AIV, GetBlockIdx()=3)").
inline thread_local std::string tls_context;

/// Prints "[TESSERA-ASCEND-CPU ERROR] <msg>" (plus the kernel instance) to stderr and aborts.
[[noreturn]] inline void Fail(const std::string& msg)
{
    std::fflush(stdout);
    if (tls_context.empty()) {
        std::fprintf(stderr, "[TESSERA-ASCEND-CPU ERROR] %s\n", msg.c_str());
    } else {
        std::fprintf(stderr, "[TESSERA-ASCEND-CPU ERROR] %s [in %s]\n", msg.c_str(), tls_context.c_str());
    }
    std::fflush(stderr);
    std::abort();
}

/// Prints a warning to stderr (used by AscendCL calls that return an error code).
inline void Warn(const std::string& msg)
{
    std::fprintf(stderr, "[TESSERA-ASCEND-CPU WARNING] %s\n", msg.c_str());
    std::fflush(stderr);
}

// ---------------------------------------------------------------------------------------
// Floating-point encoding with explicit rounding modes.
// ---------------------------------------------------------------------------------------

/// Rounding modes used by conversions (CAST_NONE maps to kRint).
enum class Rnd { kRint, kFloor, kCeil, kRound, kTrunc, kOdd };

/// Rounds a non-negative finite magnitude to an integer value.
inline double RoundMagnitude(double n, Rnd r)
{
    double fl = std::floor(n);
    double frac = n - fl;
    switch (r) {
        case Rnd::kRint:
            if (frac > 0.5) return fl + 1.0;
            if (frac < 0.5) return fl;
            return (std::fmod(fl, 2.0) == 0.0) ? fl : fl + 1.0;
        case Rnd::kRound:
            return (frac >= 0.5) ? fl + 1.0 : fl;
        case Rnd::kCeil:
            return (frac > 0.0) ? fl + 1.0 : fl;
        case Rnd::kOdd:
            if (frac == 0.0) return fl;
            return (std::fmod(fl, 2.0) != 0.0) ? fl : fl + 1.0;
        case Rnd::kFloor:
        case Rnd::kTrunc:
        default:
            return fl;
    }
}

/// Rounds a finite double to an integral value with a signed rounding mode.
inline double RoundToIntegral(double x, Rnd r)
{
    if (!std::isfinite(x)) return x;
    bool neg = std::signbit(x);
    Rnd mr = r;
    if (neg && r == Rnd::kFloor) mr = Rnd::kCeil;
    else if (neg && r == Rnd::kCeil) mr = Rnd::kFloor;
    double m = RoundMagnitude(std::fabs(x), mr);
    return neg ? -m : m;
}

/// Encodes x into an IEEE-754 binary format with E exponent bits and M mantissa bits,
/// rounding once with mode r (subnormals, overflow and NaN handled).
template <int E, int M>
inline uint32_t EncodeIeee(double x, Rnd r)
{
    const uint32_t signBit = std::signbit(x) ? (1u << (E + M)) : 0u;
    const uint32_t expAll = (1u << E) - 1u;
    if (std::isnan(x)) return signBit | (expAll << M) | (1u << (M - 1));
    if (std::isinf(x)) return signBit | (expAll << M);
    double a = std::fabs(x);
    if (a == 0.0) return signBit;
    const int bias = (1 << (E - 1)) - 1;
    const int emin = 1 - bias;
    const int emax = bias;
    Rnd mr = r;
    if (signBit != 0u && r == Rnd::kFloor) mr = Rnd::kCeil;
    else if (signBit != 0u && r == Rnd::kCeil) mr = Rnd::kFloor;
    int e2 = 0;
    (void)std::frexp(a, &e2);
    int ex = e2 - 1;
    if (ex < emin) ex = emin;
    double q = std::ldexp(1.0, ex - M);
    double n = RoundMagnitude(a / q, mr);
    double v = n * q;
    const double maxFinite = (2.0 - std::ldexp(1.0, -M)) * std::ldexp(1.0, emax);
    if (v > maxFinite) {
        bool toInf = (mr == Rnd::kRint || mr == Rnd::kRound || mr == Rnd::kCeil);
        if (toInf) return signBit | (expAll << M);
        v = maxFinite;
    }
    if (v == 0.0) return signBit;
    (void)std::frexp(v, &e2);
    ex = e2 - 1;
    if (ex < emin) {
        uint32_t mant = static_cast<uint32_t>(v / std::ldexp(1.0, emin - M));
        return signBit | mant;
    }
    uint32_t mant = static_cast<uint32_t>((v / std::ldexp(1.0, ex) - 1.0) * std::ldexp(1.0, M));
    return signBit | (static_cast<uint32_t>(ex + bias) << M) | mant;
}

/// Decodes an IEEE-754 binary value with E exponent bits and M mantissa bits.
template <int E, int M>
inline double DecodeIeee(uint32_t bits)
{
    const uint32_t expAll = (1u << E) - 1u;
    const int bias = (1 << (E - 1)) - 1;
    bool neg = ((bits >> (E + M)) & 1u) != 0u;
    uint32_t ex = (bits >> M) & expAll;
    uint32_t mant = bits & ((1u << M) - 1u);
    double v;
    if (ex == expAll) {
        v = (mant != 0u) ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    } else if (ex == 0u) {
        v = std::ldexp(static_cast<double>(mant), 1 - bias - M);
    } else {
        v = std::ldexp(1.0 + std::ldexp(static_cast<double>(mant), -M), static_cast<int>(ex) - bias);
    }
    return neg ? -v : v;
}

/// double -> IEEE binary16 bits.
inline uint16_t DoubleToHalfBits(double x, Rnd r = Rnd::kRint)
{
    return static_cast<uint16_t>(EncodeIeee<5, 10>(x, r));
}
/// IEEE binary16 bits -> double (exact).
inline double HalfBitsToDouble(uint16_t b) { return DecodeIeee<5, 10>(b); }
/// double -> bfloat16 bits.
inline uint16_t DoubleToBf16Bits(double x, Rnd r = Rnd::kRint)
{
    return static_cast<uint16_t>(EncodeIeee<8, 7>(x, r));
}
/// bfloat16 bits -> double (exact).
inline double Bf16BitsToDouble(uint16_t b) { return DecodeIeee<8, 7>(b); }
/// double -> float with a rounding mode (the default conversion is RINT).
inline float DoubleToFloat(double x, Rnd r)
{
    if (r == Rnd::kRint) return static_cast<float>(x);
    uint32_t bits = EncodeIeee<8, 23>(x, r);
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
}

/// Software IEEE binary16 ("half" in Ascend C). Same conversion surface as CANN's CPU type:
/// implicit from float/double/8..32-bit integers, implicit to them; arithmetic rounds to
/// nearest even after each operation.
class Fp16 {
public:
    uint16_t val;

    Fp16() : val(0) {}
    Fp16(const Fp16& o) = default;
    Fp16(const float& f) : val(DoubleToHalfBits(static_cast<double>(f))) {}
    Fp16(const double& d) : val(DoubleToHalfBits(d)) {}
    Fp16(const int8_t& i) : val(DoubleToHalfBits(static_cast<double>(i))) {}
    Fp16(const uint8_t& i) : val(DoubleToHalfBits(static_cast<double>(i))) {}
    Fp16(const int16_t& i) : val(DoubleToHalfBits(static_cast<double>(i))) {}
    Fp16(const uint16_t& i) : val(DoubleToHalfBits(static_cast<double>(i))) {}
    Fp16(const int32_t& i) : val(DoubleToHalfBits(static_cast<double>(i))) {}
    Fp16(const uint32_t& i) : val(DoubleToHalfBits(static_cast<double>(i))) {}

    /// Builds a value from raw bits.
    static Fp16 FromBits(uint16_t b)
    {
        Fp16 h;
        h.val = b;
        return h;
    }

    Fp16 operator+(const Fp16 o) const { return Fp16(ToDouble() + o.ToDouble()); }
    Fp16 operator-(const Fp16 o) const { return Fp16(ToDouble() - o.ToDouble()); }
    Fp16 operator*(const Fp16 o) const { return Fp16(ToDouble() * o.ToDouble()); }
    Fp16 operator/(const Fp16 o) const { return Fp16(ToDouble() / o.ToDouble()); }
    Fp16 operator+=(const Fp16 o) { *this = *this + o; return *this; }
    Fp16 operator-=(const Fp16 o) { *this = *this - o; return *this; }
    Fp16 operator*=(const Fp16 o) { *this = *this * o; return *this; }
    Fp16 operator/=(const Fp16 o) { *this = *this / o; return *this; }
    bool operator==(const Fp16& o) const { return ToDouble() == o.ToDouble(); }
    bool operator!=(const Fp16& o) const { return ToDouble() != o.ToDouble(); }
    bool operator>(const Fp16& o) const { return ToDouble() > o.ToDouble(); }
    bool operator>=(const Fp16& o) const { return ToDouble() >= o.ToDouble(); }
    bool operator<(const Fp16& o) const { return ToDouble() < o.ToDouble(); }
    bool operator<=(const Fp16& o) const { return ToDouble() <= o.ToDouble(); }
    Fp16& operator=(const Fp16& o) = default;
    Fp16& operator=(const float& f) { val = DoubleToHalfBits(f); return *this; }
    Fp16& operator=(const double& d) { val = DoubleToHalfBits(d); return *this; }
    Fp16& operator=(const int8_t& i) { val = DoubleToHalfBits(i); return *this; }
    Fp16& operator=(const uint8_t& i) { val = DoubleToHalfBits(i); return *this; }
    Fp16& operator=(const int16_t& i) { val = DoubleToHalfBits(i); return *this; }
    Fp16& operator=(const uint16_t& i) { val = DoubleToHalfBits(i); return *this; }
    Fp16& operator=(const int32_t& i) { val = DoubleToHalfBits(i); return *this; }
    Fp16& operator=(const uint32_t& i) { val = DoubleToHalfBits(i); return *this; }

    operator float() const { return static_cast<float>(ToDouble()); }
    operator double() const { return ToDouble(); }
    operator int8_t() const { return static_cast<int8_t>(ToInt(-128.0, 127.0)); }
    operator uint8_t() const { return static_cast<uint8_t>(ToInt(0.0, 255.0)); }
    operator int16_t() const { return static_cast<int16_t>(ToInt(-32768.0, 32767.0)); }
    operator uint16_t() const { return static_cast<uint16_t>(ToInt(0.0, 65535.0)); }
    operator int32_t() const { return static_cast<int32_t>(ToInt(-2147483648.0, 2147483647.0)); }
    operator uint32_t() const { return static_cast<uint32_t>(ToInt(0.0, 4294967295.0)); }

    int32_t IsInf() const { return ((val & 0x7fffu) == 0x7c00u) ? 1 : 0; }
    float ToFloat() const { return static_cast<float>(ToDouble()); }
    double ToDouble() const { return HalfBitsToDouble(val); }
    int8_t ToInt8() const { return static_cast<int8_t>(*this); }
    uint8_t ToUInt8() const { return static_cast<uint8_t>(*this); }
    int16_t ToInt16() const { return static_cast<int16_t>(*this); }
    uint16_t ToUInt16() const { return static_cast<uint16_t>(*this); }
    int32_t ToInt32() const { return static_cast<int32_t>(*this); }
    uint32_t ToUInt32() const { return static_cast<uint32_t>(*this); }

private:
    double ToInt(double lo, double hi) const
    {
        double d = ToDouble();
        if (std::isnan(d)) return 0.0;
        d = std::trunc(d);
        return d < lo ? lo : (d > hi ? hi : d);
    }
};

/// Software bfloat16 ("bfloat16_t" in Ascend C): converts from/to float, round to nearest even.
class Bf16 {
public:
    uint16_t val;

    Bf16() : val(0) {}
    Bf16(const Bf16& o) = default;
    Bf16(const float& f) : val(DoubleToBf16Bits(static_cast<double>(f))) {}

    /// Builds a value from raw bits.
    static Bf16 FromBits(uint16_t b)
    {
        Bf16 h;
        h.val = b;
        return h;
    }

    Bf16& operator=(const Bf16& o) = default;
    Bf16& operator=(const float& f) { val = DoubleToBf16Bits(f); return *this; }
    Bf16 operator+(const Bf16 o) const { return Bf16(static_cast<float>(ToDouble() + o.ToDouble())); }
    Bf16 operator+=(const Bf16 o) { *this = *this + o; return *this; }
    operator float() const { return static_cast<float>(ToDouble()); }
    operator double() const { return ToDouble(); }
    float ToFloat() const { return static_cast<float>(ToDouble()); }
    double ToDouble() const { return Bf16BitsToDouble(val); }
};

}  // namespace tessera_ascendc_cpu

/// Ascend C's 16-bit float (software type on the CPU).
using half = tessera_ascendc_cpu::Fp16;
/// Ascend C's bfloat16 (software type on the CPU).
using bfloat16_t = tessera_ascendc_cpu::Bf16;

// ---------------------------------------------------------------------------------------
// Global enums of the CPU-debug framework (CANN defines these at global scope).
// ---------------------------------------------------------------------------------------

/// Hardware pipelines.
typedef enum {
    PIPE_S = 0,
    PIPE_V,
    PIPE_M,
    PIPE_MTE1,
    PIPE_MTE2,
    PIPE_MTE3,
    PIPE_ALL,
    PIPE_MTE4 = 7,
    PIPE_MTE5 = 8,
    PIPE_V2 = 9,
    PIPE_FIX = 10,
} pipe_t;

/// Event ids for SetFlag/WaitFlag.
typedef enum {
    EVENT_ID0 = 0,
    EVENT_ID1,
    EVENT_ID2,
    EVENT_ID3,
    EVENT_ID4,
    EVENT_ID5,
    EVENT_ID6,
    EVENT_ID7,
} event_t;

/// Fixpipe quantisation / conversion modes.
typedef enum {
    NoQuant = 0,
    F322F16 = 1,
    VREQ8 = 8,
    REQ8 = 9,
    VDEQF16 = 10,
    DEQF16 = 11,
    F322BF16 = 16,
    VQF322B8_PRE = 23,
    QF322B8_PRE = 24,
} QuantMode_t;

/// How ICPU_RUN_KF maps blockDim onto cores (AscendC::SetKernelMode).
enum class KernelMode {
    MIX_MODE = 0,
    AIC_MODE,
    AIV_MODE,
    MIX_AIC_1_1,
};

/// Kernel types for KERNEL_TASK_TYPE_DEFAULT.
enum KernelMetaType : uint8_t {
    KERNEL_TYPE_AIV_ONLY,
    KERNEL_TYPE_AIC_ONLY,
    KERNEL_TYPE_MIX_AIV_1_0,
    KERNEL_TYPE_MIX_AIC_1_0,
    KERNEL_TYPE_MIX_AIC_1_1,
    KERNEL_TYPE_MIX_AIC_1_2,
    KERNEL_TYPE_AICORE,
    KERNEL_TYPE_VECTORCORE,
    KERNEL_TYPE_MIX_AICORE,
    KERNEL_TYPE_MIX_VECTOR_CORE,
    KERNEL_TYPE_MAX,
};

// ---------------------------------------------------------------------------------------
// AscendC enums, constants and parameter structs.
// ---------------------------------------------------------------------------------------
namespace AscendC {

using ::KernelMode;

constexpr int32_t MIX = 0;
constexpr int32_t AIC = 1;
constexpr int32_t AIV = 2;

/// Logical buffer positions.
enum class TPosition : uint8_t {
    GM,
    A1,
    A2,
    B1,
    B2,
    C1,
    C2,
    CO1,
    CO2,
    VECIN,
    VECOUT,
    VECCALC,
    LCM = VECCALC,
    SPM,
    SHM = SPM,
    TSCM,
    C2PIPE2GM,
    C2PIPE2LOCAL,
    MAX,
};
using QuePosition = TPosition;

/// Physical buffers.
enum class Hardware : uint8_t { GM, UB, L1, L0A, L0B, L0C, BIAS, FIXBUF, MAX };

/// Cross-pipe events (source_destination).
enum class HardEvent : uint8_t {
    MTE2_MTE1,
    MTE1_MTE2,
    MTE1_M,
    M_MTE1,
    MTE2_V,
    V_MTE2,
    MTE3_V,
    V_MTE3,
    M_V,
    V_M,
    V_V,
    MTE3_MTE1,
    MTE1_MTE3,
    MTE1_V,
    MTE2_M,
    M_MTE2,
    V_MTE1,
    M_FIX,
    FIX_M,
    MTE3_MTE2,
    MTE2_MTE3,
    S_V,
    V_S,
    S_MTE2,
    MTE2_S,
    S_MTE3,
    MTE3_S,
    MTE2_FIX,
    FIX_MTE2,
    FIX_S,
    M_S,
    FIX_MTE3,
    MTE1_FIX,
    FIX_MTE1,
    FIX_FIX,
    MAX,
};

/// Cast rounding modes.
enum class RoundMode : uint8_t {
    CAST_NONE = 0,
    CAST_RINT,
    CAST_FLOOR,
    CAST_CEIL,
    CAST_ROUND,
    CAST_TRUNC,
    CAST_ODD,
};

/// Compare modes.
enum class CMPMODE : uint8_t {
    LT = 0,
    GT,
    EQ,
    LE,
    GE,
    NE,
};

/// Select modes.
enum class SELMODE : uint8_t {
    VSEL_CMPMASK_SPR = 0,
    VSEL_TENSOR_SCALAR_MODE,
    VSEL_TENSOR_TENSOR_MODE,
};

/// Result layout of WholeReduceMax/Min.
enum class ReduceOrder : uint8_t {
    ORDER_VALUE_INDEX = 0,
    ORDER_INDEX_VALUE,
    ORDER_ONLY_VALUE,
    ORDER_ONLY_INDEX,
};

/// Queue buffer states.
enum class TBufState : uint8_t {
    FREE = 0,
    OCCUPIED,
    ENQUE,
    DEQUE,
};

using TBufHandle = uint8_t*;
using TEventID = int8_t;
using TTagType = int32_t;

/// Fixpipe output layout.
enum class CO2Layout : uint8_t {
    NZ = 0,
    ROW_MAJOR,
    COLUMN_MAJOR,
};

/// Fixpipe configuration (template argument of Fixpipe).
struct FixpipeConfig {
    CO2Layout format;
};
inline constexpr FixpipeConfig CFG_NZ = {CO2Layout::NZ};
inline constexpr FixpipeConfig CFG_ROW_MAJOR = {CO2Layout::ROW_MAJOR};
inline constexpr FixpipeConfig CFG_COLUMN_MAJOR = {CO2Layout::COLUMN_MAJOR};

constexpr int32_t ONE_BLK_SIZE = 32;
constexpr int32_t ONE_REPEAT_BYTE_SIZE = 256;
constexpr int32_t DEFAULT_BLK_NUM = 8;
constexpr int32_t DEFAULT_BLK_STRIDE = 1;
constexpr int32_t DEFAULT_REPEAT_STRIDE = 8;
constexpr int32_t MAX_REPEAT_TIMES = 255;
constexpr uint64_t FULL_MASK = 0xffffffffffffffffULL;
constexpr uint64_t MASK_PLACEHOLDER = 0;
constexpr int32_t BLOCK_CUBE = 16;
constexpr int32_t DEFAULT_DATA_COPY_NBURST = 1;
constexpr int32_t DEFAULT_DATA_COPY_STRIDE = 0;
constexpr int32_t QUE_MAX_EVENT = 8;

/// GM <-> local copy in 32-byte blocks (strides are gaps in 32-byte blocks).
struct DataCopyParams {
    DataCopyParams() {}
    DataCopyParams(const uint16_t count, const uint16_t len, const uint16_t srcStrideIn, const uint16_t dstStrideIn)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn)
    {}
    uint16_t blockCount = DEFAULT_DATA_COPY_NBURST;
    uint16_t blockLen = 0;
    uint16_t srcStride = DEFAULT_DATA_COPY_STRIDE;
    uint16_t dstStride = DEFAULT_DATA_COPY_STRIDE;
};

/// DataCopyPad parameters: blockLen in bytes; GM-side stride in bytes, UB-side in 32-byte blocks.
struct DataCopyExtParams {
    DataCopyExtParams() {}
    DataCopyExtParams(const uint16_t count, const uint32_t len, const uint32_t srcStrideIn,
        const uint32_t dstStrideIn, const uint32_t rsvIn)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn), rsv(rsvIn)
    {}
    uint16_t blockCount = DEFAULT_DATA_COPY_NBURST;
    uint32_t blockLen = 0;
    uint32_t srcStride = DEFAULT_DATA_COPY_STRIDE;
    uint32_t dstStride = DEFAULT_DATA_COPY_STRIDE;
    uint32_t rsv = 0;
};

/// Padding of DataCopyPad GM -> UB (paddings in elements, each at most 32 bytes).
template <typename T>
struct DataCopyPadExtParams {
    DataCopyPadExtParams() {}
    DataCopyPadExtParams(const bool isPadValue, const uint8_t leftPadValue, const uint8_t rightPadValue, T padValue)
        : isPad(isPadValue), leftPadding(leftPadValue), rightPadding(rightPadValue), paddingValue(padValue)
    {}
    bool isPad = false;
    uint8_t leftPadding = 0;
    uint8_t rightPadding = 0;
    T paddingValue = 0;
};

/// Legacy padding parameters (padding value as raw bits).
struct DataCopyPadParams {
    DataCopyPadParams() {}
    DataCopyPadParams(const bool isPadValue, const uint8_t leftPadValue, const uint8_t rightPadValue,
        const uint64_t padValue)
        : isPad(isPadValue), leftPadding(leftPadValue), rightPadding(rightPadValue), paddingValue(padValue)
    {}
    bool isPad = false;
    uint8_t leftPadding = 0;
    uint8_t rightPadding = 0;
    uint64_t paddingValue = 0;
};

/// GM (ND) -> L1 (NZ) conversion parameters.
struct Nd2NzParams {
    Nd2NzParams() {}
    Nd2NzParams(const uint16_t ndNumIn, const uint16_t nValueIn, const uint16_t dValueIn,
        const uint16_t srcNdMatrixStrideIn, const uint16_t srcDValueIn, const uint16_t dstNzC0StrideIn,
        const uint16_t dstNzNStrideIn, const uint16_t dstNzMatrixStrideIn)
        : ndNum(ndNumIn),
          nValue(nValueIn),
          dValue(dValueIn),
          srcNdMatrixStride(srcNdMatrixStrideIn),
          srcDValue(srcDValueIn),
          dstNzC0Stride(dstNzC0StrideIn),
          dstNzNStride(dstNzNStrideIn),
          dstNzMatrixStride(dstNzMatrixStrideIn)
    {}
    uint16_t ndNum = 0;
    uint16_t nValue = 0;
    uint16_t dValue = 0;
    uint16_t srcNdMatrixStride = 0;
    uint16_t srcDValue = 0;
    uint16_t dstNzC0Stride = 0;
    uint16_t dstNzNStride = 0;
    uint16_t dstNzMatrixStride = 0;
};

/// L1 -> L0A/L0B fractal copy parameters (512-byte fractals).
struct LoadData2DParams {
    LoadData2DParams() {}
    LoadData2DParams(const uint16_t startIndexIn, const uint8_t repeatTimesIn, const uint16_t srcStrideIn,
        const uint8_t sidIn, const uint16_t dstGapIn, const bool ifTransposeIn, const uint8_t addrModeIn)
        : startIndex(startIndexIn),
          dstGap(dstGapIn),
          srcStride(srcStrideIn),
          ifTranspose(ifTransposeIn),
          repeatTimes(repeatTimesIn),
          sid(sidIn),
          addrMode(addrModeIn)
    {}
    uint16_t startIndex = 0;
    uint16_t dstGap = 0;
    uint16_t srcStride = 0;
    bool ifTranspose = 0;
    uint8_t repeatTimes = 0;
    uint8_t sid = 0;
    uint8_t addrMode = 0;
};
using LoadData2dParams = LoadData2DParams;

/// L1 -> L0A/L0B copy with transpose of square blocks (LoadDataWithTranspose).
struct LoadData2dTransposeParams {
    LoadData2dTransposeParams() {}
    LoadData2dTransposeParams(const uint16_t startIndexIn, const uint8_t repeatTimesIn, const uint16_t srcStrideIn,
        const uint16_t dstGapIn, const uint16_t dstfracGapIn, const uint8_t addrModeIn)
        : startIndex(startIndexIn),
          repeatTimes(repeatTimesIn),
          srcStride(srcStrideIn),
          dstGap(dstGapIn),
          dstFracGap(dstfracGapIn),
          addrMode(addrModeIn)
    {}
    LoadData2dTransposeParams(const uint16_t startIndexIn, const uint8_t repeatTimesIn, const uint16_t srcStrideIn,
        const uint16_t dstGapIn, const uint16_t dstfracGapIn)
        : startIndex(startIndexIn),
          repeatTimes(repeatTimesIn),
          srcStride(srcStrideIn),
          dstGap(dstGapIn),
          dstFracGap(dstfracGapIn)
    {}
    uint16_t startIndex = 0;
    uint8_t repeatTimes = 0;
    uint16_t srcStride = 0;
    uint16_t dstGap = 0;
    uint16_t dstFracGap = 0;
    uint8_t addrMode = 0;
};

/// Cube multiply-accumulate parameters.
struct MmadParams {
    MmadParams() {}
    MmadParams(const uint16_t mIn, const uint16_t nIn, const uint16_t kIn, const bool isBiasIn,
        const int32_t fmOffsetIn, const bool enSsparseIn, const bool enWinogradAIn, const bool enWinogradBIn)
        : m(mIn),
          n(nIn),
          k(kIn),
          isBias(isBiasIn),
          fmOffset(fmOffsetIn),
          enSsparse(enSsparseIn),
          enWinogradA(enWinogradAIn),
          enWinogradB(enWinogradBIn)
    {}
    MmadParams(const uint16_t mIn, const uint16_t nIn, const uint16_t kIn, const uint8_t unitFlagIn,
        const bool cmatrixSourceIn, const bool cmatrixInitValIn)
        : m(mIn), n(nIn), k(kIn), unitFlag(unitFlagIn), cmatrixSource(cmatrixSourceIn), cmatrixInitVal(cmatrixInitValIn)
    {}
    uint16_t m = 0;
    uint16_t n = 0;
    uint16_t k = 0;
    bool isBias = false;
    int32_t fmOffset = 0;
    bool enSsparse = false;
    bool enWinogradA = false;
    bool enWinogradB = false;
    uint8_t unitFlag = 0;
    bool kDirectionAlign = false;
    bool cmatrixSource = false;
    bool cmatrixInitVal = true;
};

/// L0C -> GM parameters (Atlas A2).
struct FixpipeParamsV220 {
    FixpipeParamsV220() {}
    FixpipeParamsV220(const uint16_t nSizeIn, const uint16_t mSizeIn, const uint16_t srcStrideIn,
        const uint32_t dstStrideIn, const bool reluEnIn)
        : nSize(nSizeIn), mSize(mSizeIn), srcStride(srcStrideIn), dstStride(dstStrideIn), reluEn(reluEnIn)
    {}
    FixpipeParamsV220(const uint16_t nSizeIn, const uint16_t mSizeIn, const uint16_t srcStrideIn,
        const uint32_t dstStrideIn, const bool reluEnIn, const QuantMode_t quantPreIn, const int64_t deqScalarIn,
        const uint16_t ndNumIn, const uint16_t srcNdStrideIn, const uint16_t dstNdStrideIn, const uint8_t unitFlagIn)
        : nSize(nSizeIn),
          mSize(mSizeIn),
          srcStride(srcStrideIn),
          dstStride(dstStrideIn),
          quantPre(quantPreIn),
          deqScalar(static_cast<uint64_t>(deqScalarIn)),
          ndNum(ndNumIn),
          srcNdStride(srcNdStrideIn),
          dstNdStride(dstNdStrideIn),
          reluEn(reluEnIn),
          unitFlag(unitFlagIn)
    {}
    FixpipeParamsV220(const uint16_t nSizeIn, const uint16_t mSizeIn, const uint16_t srcStrideIn,
        const uint32_t dstStrideIn, const bool reluEnIn, const QuantMode_t quantPreIn, const int64_t deqScalarIn,
        const uint16_t ndNumIn, const uint16_t srcNdStrideIn, const uint16_t dstNdStrideIn, const uint8_t unitFlagIn,
        const bool isChannelSplitIn)
        : nSize(nSizeIn),
          mSize(mSizeIn),
          srcStride(srcStrideIn),
          dstStride(dstStrideIn),
          quantPre(quantPreIn),
          deqScalar(static_cast<uint64_t>(deqScalarIn)),
          ndNum(ndNumIn),
          srcNdStride(srcNdStrideIn),
          dstNdStride(dstNdStrideIn),
          reluEn(reluEnIn),
          unitFlag(unitFlagIn),
          isChannelSplit(isChannelSplitIn)
    {}
    uint16_t nSize = 0;
    uint16_t mSize = 0;
    uint16_t srcStride = 0;
    uint32_t dstStride = 0;
    QuantMode_t quantPre = QuantMode_t::NoQuant;
    uint64_t deqScalar = 0;
    uint16_t ndNum = 1;
    uint16_t srcNdStride = 0;
    uint16_t dstNdStride = 0;
    bool reluEn = false;
    uint8_t unitFlag = 0;
    bool isChannelSplit = false;
};

/// Brcb parameters (strides in 32-byte blocks).
struct BrcbRepeatParams {
    BrcbRepeatParams() {}
    BrcbRepeatParams(const uint16_t dstBlkStrideIn, const uint16_t dstRepStrideIn)
        : dstRepStride(dstRepStrideIn), dstBlkStride(dstBlkStrideIn)
    {}
    uint32_t blockNumber = DEFAULT_BLK_NUM;
    uint16_t dstRepStride = DEFAULT_REPEAT_STRIDE;
    uint16_t dstBlkStride = DEFAULT_BLK_STRIDE;
    uint8_t src0BlkStride = DEFAULT_BLK_STRIDE;
    uint8_t src1BlkStride = DEFAULT_BLK_STRIDE;
    uint8_t src0RepStride = DEFAULT_REPEAT_STRIDE;
    uint8_t src1RepStride = DEFAULT_REPEAT_STRIDE;
    bool repeatStrideMode = false;
    bool strideSizeMode = false;
};

}  // namespace AscendC

namespace tessera_ascendc_cpu {

/// Name of a supported element type, for messages.
template <typename T>
inline const char* TypeName()
{
    if constexpr (std::is_same_v<T, half>) return "half";
    else if constexpr (std::is_same_v<T, bfloat16_t>) return "bfloat16_t";
    else if constexpr (std::is_same_v<T, float>) return "float";
    else if constexpr (std::is_same_v<T, double>) return "double";
    else if constexpr (std::is_same_v<T, int8_t>) return "int8_t";
    else if constexpr (std::is_same_v<T, uint8_t>) return "uint8_t";
    else if constexpr (std::is_same_v<T, int16_t>) return "int16_t";
    else if constexpr (std::is_same_v<T, uint16_t>) return "uint16_t";
    else if constexpr (std::is_same_v<T, int32_t>) return "int32_t";
    else if constexpr (std::is_same_v<T, uint32_t>) return "uint32_t";
    else if constexpr (std::is_same_v<T, int64_t>) return "int64_t";
    else if constexpr (std::is_same_v<T, uint64_t>) return "uint64_t";
    else return "<unsupported type>";
}

/// Name of a TPosition, for messages.
inline const char* PosName(AscendC::TPosition p)
{
    using AscendC::TPosition;
    switch (p) {
        case TPosition::GM: return "GM";
        case TPosition::A1: return "A1";
        case TPosition::A2: return "A2";
        case TPosition::B1: return "B1";
        case TPosition::B2: return "B2";
        case TPosition::C1: return "C1";
        case TPosition::C2: return "C2";
        case TPosition::CO1: return "CO1";
        case TPosition::CO2: return "CO2";
        case TPosition::VECIN: return "VECIN";
        case TPosition::VECOUT: return "VECOUT";
        case TPosition::VECCALC: return "VECCALC";
        case TPosition::SPM: return "SPM";
        case TPosition::TSCM: return "TSCM";
        case TPosition::C2PIPE2GM: return "C2PIPE2GM";
        case TPosition::C2PIPE2LOCAL: return "C2PIPE2LOCAL";
        default: return "MAX";
    }
}

/// Name of a physical buffer, for messages.
inline const char* HwName(AscendC::Hardware h)
{
    using AscendC::Hardware;
    switch (h) {
        case Hardware::GM: return "GM";
        case Hardware::UB: return "Unified Buffer";
        case Hardware::L1: return "L1 Buffer";
        case Hardware::L0A: return "L0A Buffer";
        case Hardware::L0B: return "L0B Buffer";
        case Hardware::L0C: return "L0C Buffer";
        case Hardware::BIAS: return "BiasTable";
        case Hardware::FIXBUF: return "Fixpipe Buffer";
        default: return "MAX";
    }
}

/// Physical buffer behind a logical position on Atlas A2 (MAX = not a local buffer).
inline AscendC::Hardware HwOf(AscendC::TPosition p)
{
    using AscendC::Hardware;
    using AscendC::TPosition;
    switch (p) {
        case TPosition::VECIN:
        case TPosition::VECOUT:
        case TPosition::VECCALC: return Hardware::UB;
        case TPosition::A1:
        case TPosition::B1:
        case TPosition::C1:
        case TPosition::TSCM: return Hardware::L1;
        case TPosition::A2: return Hardware::L0A;
        case TPosition::B2: return Hardware::L0B;
        case TPosition::CO1: return Hardware::L0C;
        case TPosition::C2: return Hardware::BIAS;
        default: return Hardware::MAX;
    }
}

/// Capacity in bytes a TPipe may hand out for a physical buffer (UB: 192 KiB minus the
/// 8 KiB the 8.x API reserves for scratch).
inline uint32_t UserCapacity(AscendC::Hardware h)
{
    using AscendC::Hardware;
    switch (h) {
        case Hardware::UB: return 184u * 1024u;
        case Hardware::L1: return 512u * 1024u;
        case Hardware::L0A: return 64u * 1024u;
        case Hardware::L0B: return 64u * 1024u;
        case Hardware::L0C: return 128u * 1024u;
        case Hardware::BIAS: return 1024u;
        case Hardware::FIXBUF: return 2048u;
        default: return 0u;
    }
}

/// Physical size in bytes of a local buffer.
inline uint32_t PhysicalSize(AscendC::Hardware h)
{
    return h == AscendC::Hardware::UB ? 192u * 1024u : UserCapacity(h);
}

/// Text describing why a capacity is what it is.
inline const char* CapacityNote(AscendC::Hardware h)
{
    return h == AscendC::Hardware::UB ? " (192 KiB Unified Buffer minus the top 8 KiB reserved for API scratch)" : "";
}

/// Loads an element from raw bytes.
template <typename T>
inline T LoadElem(const uint8_t* p)
{
    T v;
    std::memcpy(static_cast<void*>(&v), p, sizeof(T));
    return v;
}

/// Stores an element into raw bytes.
template <typename T>
inline void StoreElem(uint8_t* p, const T& v)
{
    std::memcpy(p, static_cast<const void*>(&v), sizeof(T));
}

/// Element value as double (exact for all supported types up to 2^53).
template <typename T>
inline double ToDouble(const T& v)
{
    if constexpr (std::is_same_v<T, half> || std::is_same_v<T, bfloat16_t>) return v.ToDouble();
    else return static_cast<double>(v);
}

/// Converts a double to an element type with a rounding mode (integers saturate, NaN -> 0).
template <typename T>
inline T FromDouble(double d, Rnd r = Rnd::kRint)
{
    if constexpr (std::is_same_v<T, half>) return half::FromBits(DoubleToHalfBits(d, r));
    else if constexpr (std::is_same_v<T, bfloat16_t>) return bfloat16_t::FromBits(DoubleToBf16Bits(d, r));
    else if constexpr (std::is_same_v<T, float>) return DoubleToFloat(d, r);
    else if constexpr (std::is_same_v<T, double>) return d;
    else {
        if (std::isnan(d)) return T(0);
        double x = RoundToIntegral(d, r);
        double lo = static_cast<double>(std::numeric_limits<T>::lowest());
        double hi = static_cast<double>(std::numeric_limits<T>::max());
        if (x <= lo) return std::numeric_limits<T>::lowest();
        if (x >= hi) return std::numeric_limits<T>::max();
        return static_cast<T>(x);
    }
}

/// Wraps an integer result to T (two's complement), or rounds a float result to T.
template <typename T>
inline T ArithResult(double d)
{
    if constexpr (std::is_integral_v<T>) {
        if (std::isnan(d)) return T(0);
        return static_cast<T>(static_cast<int64_t>(d));
    } else {
        return FromDouble<T>(d);
    }
}

}  // namespace tessera_ascendc_cpu

#endif  // TESSERA_ASCENDC_CPU_COMMON_H
