// Tessera CPU build of the Ascend C API subset: vector unit (count forms + WholeReduce/Brcb).
//
// Every operand must be a UB tensor whose address is 32-byte aligned and which holds the
// elements the operation touches. Results are rounded to the destination type after each
// operation (half arithmetic = exact result rounded to nearest even). bfloat16_t is not an
// arithmetic type on Atlas A2: only DataCopy / Duplicate / Brcb / Cast accept it.
// Vector instructions execute on AIV cores only (no-ops on AIC, as in CANN's API layer).
#ifndef TESSERA_ASCENDC_CPU_VECTOR_H
#define TESSERA_ASCENDC_CPU_VECTOR_H

#include "tensor.h"

namespace tessera_ascendc_cpu {

/// True on an AIV core (vector instructions run there only).
inline bool OnAiv() { return Core().coreType == AscendC::AIV; }

/// Aborts unless T is one of Allowed... (bf16 gets a dedicated message).
template <typename T, typename... Allowed>
inline void RequireDtype(const char* api)
{
    if constexpr (!(std::is_same_v<T, Allowed> || ...)) {
        if constexpr (std::is_same_v<T, bfloat16_t>) {
            Fail(Str(api, ": bfloat16_t arithmetic is not supported by the Atlas A2 vector unit (only DataCopy, "
                "Duplicate, Brcb and Cast accept bfloat16_t); Cast to float, compute, and Cast back with CAST_RINT"));
        } else {
            std::string names;
            ((names += Str(names.empty() ? "" : ", ", TypeName<Allowed>())), ...);
            Fail(Str(api, ": dtype ", TypeName<T>(), " is not supported on Atlas A2 (supported: ", names, ")"));
        }
    }
}

inline void CheckCount(int64_t count, const char* api)
{
    if (count < 0) Fail(Str(api, ": count ", count, " is negative"));
}

/// Elementwise dst[i] = f(a[i], b[i]) with results rounded to T.
template <typename T, typename F>
inline void Binary(const char* api, const AscendC::LocalTensor<T>& dst, const AscendC::LocalTensor<T>& a,
    const AscendC::LocalTensor<T>& b, int32_t count, F f)
{
    CheckCount(count, api);
    if (count == 0) return;
    uint8_t* d = CheckVec(dst.tessera_ref_, Str(api, " dst").c_str(), count, sizeof(T));
    const uint8_t* pa = CheckVec(a.tessera_ref_, Str(api, " src0").c_str(), count, sizeof(T));
    const uint8_t* pb = CheckVec(b.tessera_ref_, Str(api, " src1").c_str(), count, sizeof(T));
    for (int32_t i = 0; i < count; ++i) {
        T x = LoadElem<T>(pa + i * sizeof(T));
        T y = LoadElem<T>(pb + i * sizeof(T));
        StoreElem<T>(d + i * sizeof(T), f(x, y));
    }
}

/// Elementwise dst[i] = f(a[i]) with results rounded to T.
template <typename T, typename F>
inline void Unary(const char* api, const AscendC::LocalTensor<T>& dst, const AscendC::LocalTensor<T>& a,
    int32_t count, F f)
{
    CheckCount(count, api);
    if (count == 0) return;
    uint8_t* d = CheckVec(dst.tessera_ref_, Str(api, " dst").c_str(), count, sizeof(T));
    const uint8_t* pa = CheckVec(a.tessera_ref_, Str(api, " src").c_str(), count, sizeof(T));
    for (int32_t i = 0; i < count; ++i) StoreElem<T>(d + i * sizeof(T), f(LoadElem<T>(pa + i * sizeof(T))));
}

/// a op b computed exactly (integers in 64 bits, floats in double) and rounded to T.
template <typename T>
struct Arith {
    static T Add(T a, T b)
    {
        if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<int64_t>(a) + static_cast<int64_t>(b));
        else return FromDouble<T>(ToDouble(a) + ToDouble(b));
    }
    static T Sub(T a, T b)
    {
        if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<int64_t>(a) - static_cast<int64_t>(b));
        else return FromDouble<T>(ToDouble(a) - ToDouble(b));
    }
    static T Mul(T a, T b)
    {
        if constexpr (std::is_integral_v<T>) {
            return static_cast<T>(static_cast<uint64_t>(static_cast<int64_t>(a)) * static_cast<uint64_t>(static_cast<int64_t>(b)));
        } else {
            return FromDouble<T>(ToDouble(a) * ToDouble(b));
        }
    }
    static T Div(T a, T b) { return FromDouble<T>(ToDouble(a) / ToDouble(b)); }
    static T Max(T a, T b) { return ToDouble(a) >= ToDouble(b) ? a : b; }
    static T Min(T a, T b) { return ToDouble(a) <= ToDouble(b) ? a : b; }
};

/// Sum of two values in the reduction tree (half saturates at +-65504, as documented).
template <typename T>
inline T ReduceAdd(T a, T b)
{
    if constexpr (std::is_same_v<T, half>) {
        double s = ToDouble(a) + ToDouble(b);
        if (s > 65504.0) s = 65504.0;
        if (s < -65504.0) s = -65504.0;
        return FromDouble<T>(s);
    } else {
        return Arith<T>::Add(a, b);
    }
}

/// Pairwise-tree sum of a power-of-two sized slot array (inactive slots hold 0).
template <typename T>
inline T TreeSum(std::vector<T> v)
{
    size_t n = v.size();
    while (n > 1) {
        for (size_t i = 0; i < n / 2; ++i) v[i] = ReduceAdd<T>(v[2 * i], v[2 * i + 1]);
        n /= 2;
    }
    return v.empty() ? T(0) : v[0];
}

/// The element positions of one 256-byte repeat that a mask enables.
template <typename T>
inline std::vector<bool> MaskBits(const char* api, const uint64_t* maskArr, int64_t maskCount)
{
    const int per = 256 / static_cast<int>(sizeof(T));
    std::vector<bool> on(per, false);
    if (maskArr == nullptr) {
        if (maskCount < 1 || maskCount > per) {
            Fail(Str(api, ": continuous mask ", maskCount, " outside [1, ", per, "] for ", TypeName<T>()));
        }
        for (int i = 0; i < maskCount; ++i) on[i] = true;
    } else {
        bool any = false;
        for (int i = 0; i < per; ++i) {
            on[i] = ((maskArr[i / 64] >> (i % 64)) & 1ull) != 0;
            any = any || on[i];
        }
        if (!any) Fail(Str(api, ": bitwise mask selects no element"));
    }
    return on;
}

/// Element index (in T units) of slot j of repeat r.
template <typename T>
inline uint64_t RepeatSlot(int64_t r, int j, int64_t blkStride, int64_t repStride)
{
    const int64_t epb = 32 / static_cast<int64_t>(sizeof(T));
    return static_cast<uint64_t>(r * repStride * epb + (j / epb) * blkStride * epb + (j % epb));
}

/// Shared implementation of WholeReduceSum/Max/Min.
template <typename T>
inline void WholeReduce(const char* api, int kind, const AscendC::LocalTensor<T>& dst,
    const AscendC::LocalTensor<T>& src, const uint64_t* maskArr, int64_t maskCount, int32_t repeatTimes,
    int32_t dstRepStride, int32_t srcBlkStride, int32_t srcRepStride, AscendC::ReduceOrder order)
{
    using AscendC::ReduceOrder;
    if (repeatTimes < 0 || repeatTimes > 255) Fail(Str(api, ": repeatTime ", repeatTimes, " outside [0, 255]"));
    if (dstRepStride < 0 || srcBlkStride < 0 || srcRepStride < 0) Fail(Str(api, ": negative stride"));
    std::vector<bool> on = MaskBits<T>(api, maskArr, maskCount);
    if (repeatTimes == 0) return;
    const int per = static_cast<int>(on.size());
    uint64_t srcNeed = 0;
    for (int64_t r = 0; r < repeatTimes; ++r) {
        for (int j = 0; j < per; ++j) {
            if (on[j]) srcNeed = std::max<uint64_t>(srcNeed, RepeatSlot<T>(r, j, srcBlkStride, srcRepStride) + 1);
        }
    }
    // output slots: sum / only value -> 1 T; value+index -> 2 T; only index -> one uint32
    uint64_t unitBytes = sizeof(T);
    if (kind != 0 && (order == ReduceOrder::ORDER_VALUE_INDEX || order == ReduceOrder::ORDER_INDEX_VALUE)) {
        unitBytes = 2 * sizeof(T);
    }
    if (kind != 0 && order == ReduceOrder::ORDER_ONLY_INDEX) unitBytes = 4;
    uint64_t dstNeed = (static_cast<uint64_t>(repeatTimes) - 1) * dstRepStride * unitBytes + unitBytes;
    const uint8_t* s = CheckVec(src.tessera_ref_, Str(api, " src").c_str(), srcNeed, sizeof(T));
    uint8_t* d = CheckLocal(dst.tessera_ref_, Str(api, " dst").c_str(), dstNeed, 32, {AscendC::Hardware::UB});
    std::vector<T> results(repeatTimes);
    std::vector<uint32_t> indices(repeatTimes);
    for (int64_t r = 0; r < repeatTimes; ++r) {
        if (kind == 0) {
            std::vector<T> slots(per, T(0));
            for (int j = 0; j < per; ++j) {
                if (on[j]) slots[j] = LoadElem<T>(s + RepeatSlot<T>(r, j, srcBlkStride, srcRepStride) * sizeof(T));
            }
            results[r] = TreeSum<T>(slots);
        } else {
            bool first = true;
            T best = T(0);
            uint32_t bi = 0;
            for (int j = 0; j < per; ++j) {
                if (!on[j]) continue;
                T v = LoadElem<T>(s + RepeatSlot<T>(r, j, srcBlkStride, srcRepStride) * sizeof(T));
                bool better = kind == 1 ? ToDouble(v) > ToDouble(best) : ToDouble(v) < ToDouble(best);
                if (first || better) {
                    best = v;
                    bi = static_cast<uint32_t>(j);
                    first = false;
                }
            }
            results[r] = best;
            indices[r] = bi;
        }
    }
    for (int64_t r = 0; r < repeatTimes; ++r) {
        uint8_t* out = d + static_cast<uint64_t>(r) * dstRepStride * unitBytes;
        if (kind == 0 || order == ReduceOrder::ORDER_ONLY_VALUE) {
            StoreElem<T>(out, results[r]);
            continue;
        }
        if (order == ReduceOrder::ORDER_ONLY_INDEX) {
            StoreElem<uint32_t>(out, indices[r]);
            continue;
        }
        uint8_t* vSlot = order == ReduceOrder::ORDER_VALUE_INDEX ? out : out + sizeof(T);
        uint8_t* iSlot = order == ReduceOrder::ORDER_VALUE_INDEX ? out + sizeof(T) : out;
        StoreElem<T>(vSlot, results[r]);
        // the index is stored bit-wise in a T-sized slot
        if constexpr (sizeof(T) == 2) StoreElem<uint16_t>(iSlot, static_cast<uint16_t>(indices[r]));
        else StoreElem<uint32_t>(iSlot, indices[r]);
    }
}

/// Cast round mode -> Rnd.
inline Rnd ToRnd(AscendC::RoundMode m)
{
    using AscendC::RoundMode;
    switch (m) {
        case RoundMode::CAST_FLOOR: return Rnd::kFloor;
        case RoundMode::CAST_CEIL: return Rnd::kCeil;
        case RoundMode::CAST_ROUND: return Rnd::kRound;
        case RoundMode::CAST_TRUNC: return Rnd::kTrunc;
        case RoundMode::CAST_ODD: return Rnd::kOdd;
        default: return Rnd::kRint;
    }
}

inline const char* RoundModeName(AscendC::RoundMode m)
{
    using AscendC::RoundMode;
    switch (m) {
        case RoundMode::CAST_NONE: return "CAST_NONE";
        case RoundMode::CAST_RINT: return "CAST_RINT";
        case RoundMode::CAST_FLOOR: return "CAST_FLOOR";
        case RoundMode::CAST_CEIL: return "CAST_CEIL";
        case RoundMode::CAST_ROUND: return "CAST_ROUND";
        case RoundMode::CAST_TRUNC: return "CAST_TRUNC";
        default: return "CAST_ODD";
    }
}

/// Allowed round modes of a Cast pair on Atlas A2 (bit i = RoundMode i); 0 = unsupported pair.
template <typename D, typename S>
inline unsigned CastModes()
{
    constexpr unsigned NONE = 1u << 0, RINT_TRUNC = 0x3Eu /* RINT..TRUNC */, ODD = 1u << 6;
    if constexpr (std::is_same_v<S, half>) {
        if constexpr (std::is_same_v<D, float>) return NONE;
        else if constexpr (std::is_same_v<D, int32_t> || std::is_same_v<D, int16_t>) return RINT_TRUNC;
        else if constexpr (std::is_same_v<D, int8_t> || std::is_same_v<D, uint8_t>) return RINT_TRUNC | NONE;
        else return 0;
    } else if constexpr (std::is_same_v<S, float>) {
        if constexpr (std::is_same_v<D, float>) return RINT_TRUNC;
        else if constexpr (std::is_same_v<D, half>) return RINT_TRUNC | ODD | NONE;
        else if constexpr (std::is_same_v<D, bfloat16_t>) return RINT_TRUNC;
        else if constexpr (std::is_same_v<D, int32_t> || std::is_same_v<D, int16_t> || std::is_same_v<D, int64_t>) {
            return RINT_TRUNC;
        } else return 0;
    } else if constexpr (std::is_same_v<S, bfloat16_t>) {
        if constexpr (std::is_same_v<D, float>) return NONE;
        else if constexpr (std::is_same_v<D, int32_t>) return RINT_TRUNC;
        else return 0;
    } else if constexpr (std::is_same_v<S, int32_t>) {
        if constexpr (std::is_same_v<D, float>) return RINT_TRUNC | NONE;
        else if constexpr (std::is_same_v<D, int16_t> || std::is_same_v<D, int64_t>) return NONE;
        else return 0;
    } else if constexpr (std::is_same_v<S, int16_t>) {
        if constexpr (std::is_same_v<D, half>) return RINT_TRUNC | NONE;
        else if constexpr (std::is_same_v<D, float>) return NONE;
        else return 0;
    } else if constexpr (std::is_same_v<S, int8_t> || std::is_same_v<S, uint8_t>) {
        return std::is_same_v<D, half> ? NONE : 0;
    } else if constexpr (std::is_same_v<S, int64_t>) {
        if constexpr (std::is_same_v<D, int32_t>) return NONE;
        else if constexpr (std::is_same_v<D, float>) return RINT_TRUNC;
        else return 0;
    } else {
        return 0;
    }
}

}  // namespace tessera_ascendc_cpu

namespace AscendC {

// ----- binary (tensor, tensor) -----

/// dst = src0 + src1 (half, float, int16_t, int32_t).
template <typename T>
inline void Add(const LocalTensor<T>& dstLocal, const LocalTensor<T>& src0Local, const LocalTensor<T>& src1Local,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Add");
    Binary("Add", dstLocal, src0Local, src1Local, calCount, Arith<T>::Add);
}
/// dst = src0 - src1 (half, float, int16_t, int32_t).
template <typename T>
inline void Sub(const LocalTensor<T>& dstLocal, const LocalTensor<T>& src0Local, const LocalTensor<T>& src1Local,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Sub");
    Binary("Sub", dstLocal, src0Local, src1Local, calCount, Arith<T>::Sub);
}
/// dst = src0 * src1 (half, float, int16_t, int32_t).
template <typename T>
inline void Mul(const LocalTensor<T>& dstLocal, const LocalTensor<T>& src0Local, const LocalTensor<T>& src1Local,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Mul");
    Binary("Mul", dstLocal, src0Local, src1Local, calCount, Arith<T>::Mul);
}
/// dst = src0 / src1 (half, float).
template <typename T>
inline void Div(const LocalTensor<T>& dstLocal, const LocalTensor<T>& src0Local, const LocalTensor<T>& src1Local,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float>("Div");
    Binary("Div", dstLocal, src0Local, src1Local, calCount, Arith<T>::Div);
}
/// dst = max(src0, src1) (half, float, int16_t, int32_t).
template <typename T>
inline void Max(const LocalTensor<T>& dstLocal, const LocalTensor<T>& src0Local, const LocalTensor<T>& src1Local,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Max");
    Binary("Max", dstLocal, src0Local, src1Local, calCount, Arith<T>::Max);
}
/// dst = min(src0, src1) (half, float, int16_t, int32_t).
template <typename T>
inline void Min(const LocalTensor<T>& dstLocal, const LocalTensor<T>& src0Local, const LocalTensor<T>& src1Local,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Min");
    Binary("Min", dstLocal, src0Local, src1Local, calCount, Arith<T>::Min);
}

// ----- binary (tensor, scalar) -----

/// dst = src + scalar (half, float, int16_t, int32_t).
template <typename T, bool isSetMask = true>
inline void Adds(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const T& scalarValue,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Adds");
    T s = scalarValue;
    Unary("Adds", dstLocal, srcLocal, calCount, [s](T x) { return Arith<T>::Add(x, s); });
}
/// dst = src * scalar (half, float, int16_t, int32_t).
template <typename T, bool isSetMask = true>
inline void Muls(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const T& scalarValue,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Muls");
    T s = scalarValue;
    Unary("Muls", dstLocal, srcLocal, calCount, [s](T x) { return Arith<T>::Mul(x, s); });
}
/// dst = max(src, scalar) (half, float, int16_t, int32_t).
template <typename T, bool isSetMask = true>
inline void Maxs(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const T& scalarValue,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Maxs");
    T s = scalarValue;
    Unary("Maxs", dstLocal, srcLocal, calCount, [s](T x) { return Arith<T>::Max(x, s); });
}
/// dst = min(src, scalar) (half, float, int16_t, int32_t).
template <typename T, bool isSetMask = true>
inline void Mins(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const T& scalarValue,
    const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int16_t, int32_t>("Mins");
    T s = scalarValue;
    Unary("Mins", dstLocal, srcLocal, calCount, [s](T x) { return Arith<T>::Min(x, s); });
}

// ----- unary -----

#define TESSERA_ASCENDC_UNARY_FLOAT(NAME, EXPR)                                                                  \
    template <typename T>                                                                                       \
    inline void NAME(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const int32_t& calCount)    \
    {                                                                                                           \
        using namespace tessera_ascendc_cpu;                                                                    \
        if (!OnAiv()) return;                                                                                   \
        RequireDtype<T, half, float>(#NAME);                                                                    \
        Unary(#NAME, dstLocal, srcLocal, calCount, [](T v) {                                                    \
            double x = ToDouble(v);                                                                             \
            return FromDouble<T>(EXPR);                                                                         \
        });                                                                                                     \
    }

/// dst = exp(src) (half, float).
TESSERA_ASCENDC_UNARY_FLOAT(Exp, std::exp(x))
/// dst = ln(src) (half, float).
TESSERA_ASCENDC_UNARY_FLOAT(Ln, std::log(x))
/// dst = sqrt(src) (half, float).
TESSERA_ASCENDC_UNARY_FLOAT(Sqrt, std::sqrt(x))
/// dst = 1 / sqrt(src) (half, float).
TESSERA_ASCENDC_UNARY_FLOAT(Rsqrt, 1.0 / std::sqrt(x))
/// dst = 1 / src (half, float).
TESSERA_ASCENDC_UNARY_FLOAT(Reciprocal, 1.0 / x)
/// dst = |src| (half, float).
TESSERA_ASCENDC_UNARY_FLOAT(Abs, std::fabs(x))
#undef TESSERA_ASCENDC_UNARY_FLOAT

/// dst = max(src, 0) (half, float, int32_t).
template <typename T>
inline void Relu(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, int32_t>("Relu");
    Unary("Relu", dstLocal, srcLocal, calCount, [](T v) { return ToDouble(v) > 0.0 ? v : T(0); });
}

/// dst[0..count) = scalar (half, float, bfloat16_t, int16_t, uint16_t, int32_t, uint32_t).
template <typename T>
inline void Duplicate(const LocalTensor<T>& dstLocal, const T& scalarValue, const int32_t& calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float, bfloat16_t, int16_t, uint16_t, int32_t, uint32_t>("Duplicate");
    CheckCount(calCount, "Duplicate");
    if (calCount == 0) return;
    uint8_t* d = CheckVec(dstLocal.tessera_ref_, "Duplicate dst", calCount, sizeof(T));
    for (int32_t i = 0; i < calCount; ++i) StoreElem<T>(d + i * sizeof(T), scalarValue);
}

/// Converts `calCount` elements with the given rounding (pairs and modes of the A2 table).
template <typename T1, typename T2>
inline void Cast(const LocalTensor<T1>& dstLocal, const LocalTensor<T2>& srcLocal, const RoundMode& round_mode,
    const uint32_t calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    unsigned modes = CastModes<T1, T2>();
    if (modes == 0) {
        Fail(Str("Cast ", TypeName<T2>(), " -> ", TypeName<T1>(), ": conversion not supported on Atlas A2"));
    }
    if (!(modes & (1u << static_cast<unsigned>(round_mode)))) {
        Fail(Str("Cast ", TypeName<T2>(), " -> ", TypeName<T1>(), ": RoundMode::", RoundModeName(round_mode),
            " is not supported for this conversion on Atlas A2"));
    }
    if (calCount == 0) return;
    uint8_t* d = CheckVec(dstLocal.tessera_ref_, "Cast dst", calCount, sizeof(T1));
    const uint8_t* s = CheckVec(srcLocal.tessera_ref_, "Cast src", calCount, sizeof(T2));
    Rnd r = ToRnd(round_mode);
    // read everything first: dst and src may overlap when the sizes match
    std::vector<double> vals(calCount);
    for (uint32_t i = 0; i < calCount; ++i) vals[i] = ToDouble(LoadElem<T2>(s + i * sizeof(T2)));
    for (uint32_t i = 0; i < calCount; ++i) StoreElem<T1>(d + i * sizeof(T1), FromDouble<T1>(vals[i], r));
}

// ----- reductions -----

/// dst[0] = sum of src[0..count): pairwise tree inside each 256-byte repeat, repeats added in
/// order (the A2 count-form order). workLocal must be a UB tensor (its content is not used).
template <typename T, bool isSetMask = true>
inline void ReduceSum(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const LocalTensor<T>& workLocal,
    const int32_t count)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float>("ReduceSum");
    CheckCount(count, "ReduceSum");
    if (count == 0) return;
    const uint8_t* s = CheckVec(srcLocal.tessera_ref_, "ReduceSum src", count, sizeof(T));
    uint8_t* d = CheckVec(dstLocal.tessera_ref_, "ReduceSum dst", 1, sizeof(T));
    (void)CheckVec(workLocal.tessera_ref_, "ReduceSum workLocal", 0, sizeof(T));
    const int per = 256 / static_cast<int>(sizeof(T));
    T acc = T(0);
    for (int32_t base = 0; base < count; base += per) {
        std::vector<T> slots(per, T(0));
        for (int j = 0; j < per && base + j < count; ++j) slots[j] = LoadElem<T>(s + (base + j) * sizeof(T));
        T part = TreeSum<T>(slots);
        acc = base == 0 ? part : ReduceAdd<T>(acc, part);
    }
    StoreElem<T>(d, acc);
}

namespace tessera_reduce_detail {
template <typename T>
inline void ReduceMaxMin(const char* api, bool isMax, const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal,
    const LocalTensor<T>& workLocal, int32_t count, bool calIndex)
{
    using namespace tessera_ascendc_cpu;
    RequireDtype<T, half, float>(api);
    CheckCount(count, api);
    if (count == 0) return;
    const uint8_t* s = CheckVec(srcLocal.tessera_ref_, Str(api, " src").c_str(), count, sizeof(T));
    uint8_t* d = CheckVec(dstLocal.tessera_ref_, Str(api, " dst").c_str(), calIndex ? 2 : 1, sizeof(T));
    (void)CheckVec(workLocal.tessera_ref_, Str(api, " workLocal").c_str(), 0, sizeof(T));
    T best = LoadElem<T>(s);
    uint32_t bi = 0;
    for (int32_t i = 1; i < count; ++i) {
        T v = LoadElem<T>(s + i * sizeof(T));
        if (isMax ? ToDouble(v) > ToDouble(best) : ToDouble(v) < ToDouble(best)) {
            best = v;
            bi = static_cast<uint32_t>(i);
        }
    }
    StoreElem<T>(d, best);
    if (calIndex) {
        // the index is stored bit-wise in the second T slot (read it back as uint16_t / uint32_t)
        if constexpr (sizeof(T) == 2) StoreElem<uint16_t>(d + sizeof(T), static_cast<uint16_t>(bi));
        else StoreElem<uint32_t>(d + sizeof(T), bi);
    }
}
}  // namespace tessera_reduce_detail

/// dst[0] = max of src[0..count); with calIndex, dst[1] holds the index bit-wise.
template <typename T>
inline void ReduceMax(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const LocalTensor<T>& workLocal,
    const int32_t count, bool calIndex = 0)
{
    if (!tessera_ascendc_cpu::OnAiv()) return;
    tessera_reduce_detail::ReduceMaxMin("ReduceMax", true, dstLocal, srcLocal, workLocal, count, calIndex);
}

/// dst[0] = min of src[0..count); with calIndex, dst[1] holds the index bit-wise.
template <typename T>
inline void ReduceMin(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const LocalTensor<T>& workLocal,
    const int32_t count, bool calIndex = 0)
{
    if (!tessera_ascendc_cpu::OnAiv()) return;
    tessera_reduce_detail::ReduceMaxMin("ReduceMin", false, dstLocal, srcLocal, workLocal, count, calIndex);
}

/// One sum per 256-byte repeat (continuous mask), written to dst[r * dstRepStride].
template <typename T, bool isSetMask = true>
inline void WholeReduceSum(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const int32_t mask,
    const int32_t repeatTimes, const int32_t dstRepStride, const int32_t srcBlkStride, const int32_t srcRepStride)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float>("WholeReduceSum");
    WholeReduce<T>("WholeReduceSum", 0, dstLocal, srcLocal, nullptr, mask, repeatTimes, dstRepStride, srcBlkStride,
        srcRepStride, ReduceOrder::ORDER_ONLY_VALUE);
}
/// One sum per 256-byte repeat (bitwise mask).
template <typename T, bool isSetMask = true>
inline void WholeReduceSum(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const uint64_t mask[],
    const int32_t repeatTimes, const int32_t dstRepStride, const int32_t srcBlkStride, const int32_t srcRepStride)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float>("WholeReduceSum");
    WholeReduce<T>("WholeReduceSum", 0, dstLocal, srcLocal, mask, 0, repeatTimes, dstRepStride, srcBlkStride,
        srcRepStride, ReduceOrder::ORDER_ONLY_VALUE);
}
/// Max (and index within the repeat) per 256-byte repeat (continuous mask).
template <typename T, bool isSetMask = true>
inline void WholeReduceMax(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const int32_t mask,
    const int32_t repeatTimes, const int32_t dstRepStride, const int32_t srcBlkStride, const int32_t srcRepStride,
    ReduceOrder order = ReduceOrder::ORDER_VALUE_INDEX)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float>("WholeReduceMax");
    WholeReduce<T>("WholeReduceMax", 1, dstLocal, srcLocal, nullptr, mask, repeatTimes, dstRepStride, srcBlkStride,
        srcRepStride, order);
}
/// Max (and index within the repeat) per 256-byte repeat (bitwise mask).
template <typename T, bool isSetMask = true>
inline void WholeReduceMax(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const uint64_t mask[],
    const int32_t repeatTimes, const int32_t dstRepStride, const int32_t srcBlkStride, const int32_t srcRepStride,
    ReduceOrder order = ReduceOrder::ORDER_VALUE_INDEX)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float>("WholeReduceMax");
    WholeReduce<T>("WholeReduceMax", 1, dstLocal, srcLocal, mask, 0, repeatTimes, dstRepStride, srcBlkStride,
        srcRepStride, order);
}
/// Min (and index within the repeat) per 256-byte repeat (continuous mask).
template <typename T, bool isSetMask = true>
inline void WholeReduceMin(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const int32_t mask,
    const int32_t repeatTimes, const int32_t dstRepStride, const int32_t srcBlkStride, const int32_t srcRepStride,
    ReduceOrder order = ReduceOrder::ORDER_VALUE_INDEX)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, float>("WholeReduceMin");
    WholeReduce<T>("WholeReduceMin", 2, dstLocal, srcLocal, nullptr, mask, repeatTimes, dstRepStride, srcBlkStride,
        srcRepStride, order);
}

/// Each repeat reads 8 consecutive src elements and fills one 32-byte dst block with each.
template <typename T>
inline void Brcb(const LocalTensor<T>& dstLocal, const LocalTensor<T>& src0Local, const uint8_t repeatTimes,
    const BrcbRepeatParams& repeatParams)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    static_assert(sizeof(T) == 2 || sizeof(T) == 4, "Brcb supports 16-bit and 32-bit types");
    if (repeatTimes == 0) return;
    uint64_t blk = repeatParams.dstBlkStride == 0 ? 1 : repeatParams.dstBlkStride;
    uint64_t rep = repeatParams.dstRepStride;
    uint64_t dstNeed = 0;
    for (uint64_t r = 0; r < repeatTimes; ++r) {
        for (uint64_t j = 0; j < 8; ++j) dstNeed = std::max(dstNeed, (r * rep + j * blk) * 32 + 32);
    }
    const uint8_t* s = CheckVec(src0Local.tessera_ref_, "Brcb src0", 8ull * repeatTimes, sizeof(T));
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, "Brcb dst", dstNeed, 32, {Hardware::UB});
    if (s == d) Fail("Brcb: src0 and dst must not be the same address");
    std::vector<T> vals(8ull * repeatTimes);
    for (size_t i = 0; i < vals.size(); ++i) vals[i] = LoadElem<T>(s + i * sizeof(T));
    for (uint64_t r = 0; r < repeatTimes; ++r) {
        for (uint64_t j = 0; j < 8; ++j) {
            uint8_t* out = d + (r * rep + j * blk) * 32;
            for (uint64_t e = 0; e < 32 / sizeof(T); ++e) StoreElem<T>(out + e * sizeof(T), vals[r * 8 + j]);
        }
    }
}

// ----- compare / select -----

namespace tessera_compare_detail {
/// Shared body of Compare / CompareScalar: bit i of dst (bit i%8 of byte i/8) = src0[i] cmp src1(i).
template <typename T, typename U, typename Src1>
inline void CompareImpl(const char* api, const LocalTensor<U>& dstLocal, const LocalTensor<T>& src0Local,
    CMPMODE cmpMode, uint32_t calCount, Src1 src1)
{
    using namespace tessera_ascendc_cpu;
    RequireDtype<T, half, float, int32_t>(api);
    if constexpr (std::is_same_v<T, int32_t>) {
        if (cmpMode != CMPMODE::EQ) Fail(Str(api, ": int32_t operands only support CMPMODE::EQ on Atlas A2"));
    }
    if (static_cast<uint8_t>(cmpMode) > static_cast<uint8_t>(CMPMODE::NE)) {
        Fail(Str(api, ": illegal CMPMODE ", static_cast<int>(cmpMode)));
    }
    if ((static_cast<uint64_t>(calCount) * sizeof(T)) % 256 != 0) {
        Fail(Str(api, "(count=", calCount, " x ", TypeName<T>(), "): ", calCount * sizeof(T),
            " bytes is not a multiple of 256 bytes (the count form compares whole 256-byte repeats)"));
    }
    if (calCount == 0) return;
    const uint8_t* a = CheckVec(src0Local.tessera_ref_, Str(api, " src0").c_str(), calCount, sizeof(T));
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, Str(api, " dst").c_str(), (calCount + 7) / 8, 32, {Hardware::UB});
    std::vector<uint8_t> bits((calCount + 7) / 8, 0);
    for (uint32_t i = 0; i < calCount; ++i) {
        double x = ToDouble(LoadElem<T>(a + i * sizeof(T)));
        double y = src1(i);
        bool r = false;
        switch (cmpMode) {
            case CMPMODE::LT: r = x < y; break;
            case CMPMODE::GT: r = x > y; break;
            case CMPMODE::EQ: r = x == y; break;
            case CMPMODE::LE: r = x <= y; break;
            case CMPMODE::GE: r = x >= y; break;
            default: r = x != y; break;
        }
        if (r) bits[i / 8] = static_cast<uint8_t>(bits[i / 8] | (1u << (i % 8)));
    }
    std::memcpy(d, bits.data(), bits.size());
}
}  // namespace tessera_compare_detail

/// One bit per element (bit i%8 of byte i/8, 1 = true); count * sizeof(T) must be a multiple of 256.
template <typename T, typename U>
inline void Compare(const LocalTensor<U>& dstLocal, const LocalTensor<T>& src0Local, const LocalTensor<T>& src1Local,
    CMPMODE cmpMode, uint32_t calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    if constexpr (!(std::is_same_v<U, uint8_t> || std::is_same_v<U, int8_t>)) {
        Fail(Str("Compare: dst dtype ", TypeName<U>(), " is not supported (int8_t / uint8_t bit masks only)"));
    }
    const uint8_t* b = nullptr;
    if (calCount != 0 && (static_cast<uint64_t>(calCount) * sizeof(T)) % 256 == 0) {
        b = CheckVec(src1Local.tessera_ref_, "Compare src1", calCount, sizeof(T));
    }
    tessera_compare_detail::CompareImpl<T, U>("Compare", dstLocal, src0Local, cmpMode, calCount,
        [b](uint32_t i) { return ToDouble(LoadElem<T>(b + i * sizeof(T))); });
}

/// Bit i of dst = src0[i] cmp src1Scalar (uint8_t mask); count * sizeof(T) must be a multiple of 256
/// (CANN's count form runs calCount * sizeof(T) / 256 whole repeats).
template <typename T, typename U>
inline void CompareScalar(const LocalTensor<U>& dstLocal, const LocalTensor<T>& src0Local, const T src1Scalar,
    CMPMODE cmpMode, uint32_t calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    if constexpr (!std::is_same_v<U, uint8_t>) {
        Fail(Str("CompareScalar: dst dtype ", TypeName<U>(), " is not supported (uint8_t bit masks only)"));
    }
    const double y = ToDouble(src1Scalar);
    tessera_compare_detail::CompareImpl<T, U>("CompareScalar", dstLocal, src0Local, cmpMode, calCount,
        [y](uint32_t) { return y; });
}

// ----- index vectors -----

/// dst[i] = firstValue + i (half, int16_t, float, int32_t). As in CANN's A2 implementation, the
/// first 32-byte block is written by the scalar unit (values computed in float) and always
/// completely, even for calCount < one block; the rest are vector Adds of the block / repeat
/// before it (exact for integers).
template <typename T>
inline void CreateVecIndex(LocalTensor<T> dstLocal, const T& firstValue, uint32_t calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!OnAiv()) return;
    RequireDtype<T, half, int16_t, float, int32_t>("CreateVecIndex");
    if (calCount == 0) Fail("CreateVecIndex: calCount must be positive");
    const uint32_t blk = 32 / sizeof(T);
    const uint32_t rep = 256 / sizeof(T);
    const uint32_t n = std::max(calCount, blk);
    uint8_t* d = CheckVec(dstLocal.tessera_ref_, "CreateVecIndex dst", n, sizeof(T));
    std::vector<T> v(n);
    for (uint32_t i = 0; i < blk; ++i) {
        v[i] = FromDouble<T>(static_cast<double>(static_cast<float>(ToDouble(firstValue)) + static_cast<float>(i)));
    }
    for (uint32_t i = blk; i < n; ++i) {
        v[i] = i < rep ? Arith<T>::Add(v[i - blk], FromDouble<T>(blk)) : Arith<T>::Add(v[i - rep], FromDouble<T>(rep));
    }
    for (uint32_t i = 0; i < n; ++i) StoreElem<T>(d + i * sizeof(T), v[i]);
}

namespace tessera_select_detail {
template <typename T, typename U>
inline void SelectImpl(const LocalTensor<T>& dst, const LocalTensor<U>& selMask, const LocalTensor<T>& src0,
    const LocalTensor<T>* src1, T scalar, SELMODE selMode, uint32_t count)
{
    using namespace tessera_ascendc_cpu;
    RequireDtype<T, half, float>("Select");
    if (count == 0) return;
    if (src1 == nullptr && selMode != SELMODE::VSEL_TENSOR_SCALAR_MODE) {
        Fail("Select(tensor, scalar): needs SELMODE::VSEL_TENSOR_SCALAR_MODE");
    }
    if (src1 != nullptr && selMode == SELMODE::VSEL_TENSOR_SCALAR_MODE) {
        Fail("Select(tensor, tensor): SELMODE::VSEL_TENSOR_SCALAR_MODE needs a scalar src1");
    }
    const uint32_t per = 256 / sizeof(T);
    uint64_t maskBits = selMode == SELMODE::VSEL_CMPMASK_SPR ? std::min<uint64_t>(per, count) : count;
    uint8_t* d = CheckVec(dst.tessera_ref_, "Select dst", count, sizeof(T));
    const uint8_t* m = CheckLocal(selMask.tessera_ref_, "Select selMask", (maskBits + 7) / 8, 32, {Hardware::UB});
    const uint8_t* a = CheckVec(src0.tessera_ref_, "Select src0", count, sizeof(T));
    const uint8_t* b = src1 ? CheckVec(src1->tessera_ref_, "Select src1", count, sizeof(T)) : nullptr;
    std::vector<T> out(count);
    for (uint32_t i = 0; i < count; ++i) {
        uint32_t bit = selMode == SELMODE::VSEL_CMPMASK_SPR ? i % per : i;
        bool take0 = ((m[bit / 8] >> (bit % 8)) & 1u) != 0;
        out[i] = take0 ? LoadElem<T>(a + i * sizeof(T)) : (b ? LoadElem<T>(b + i * sizeof(T)) : scalar);
    }
    for (uint32_t i = 0; i < count; ++i) StoreElem<T>(d + i * sizeof(T), out[i]);
}
}  // namespace tessera_select_detail

/// dst[i] = bit i of selMask ? src0[i] : src1[i] (mode 0 reuses the first 256 B worth of bits per repeat).
template <typename T, typename U>
inline void Select(const LocalTensor<T>& dstLocal, const LocalTensor<U>& selMask, const LocalTensor<T>& src0Local,
    const LocalTensor<T>& src1Local, SELMODE selMode, uint32_t calCount)
{
    if (!tessera_ascendc_cpu::OnAiv()) return;
    tessera_select_detail::SelectImpl<T, U>(dstLocal, selMask, src0Local, &src1Local, T(0), selMode, calCount);
}

/// dst[i] = bit i of selMask ? src0[i] : scalar (SELMODE::VSEL_TENSOR_SCALAR_MODE).
template <typename T, typename U>
inline void Select(const LocalTensor<T>& dstLocal, const LocalTensor<U>& selMask, const LocalTensor<T>& src0Local,
    T src1Local, SELMODE selMode, uint32_t calCount)
{
    if (!tessera_ascendc_cpu::OnAiv()) return;
    tessera_select_detail::SelectImpl<T, U>(dstLocal, selMask, src0Local, nullptr, src1Local, selMode, calCount);
}

}  // namespace AscendC

#endif  // TESSERA_ASCENDC_CPU_VECTOR_H
