// Tessera CPU build of the Ascend C API subset: the Cube path (LoadData, Mmad, Fixpipe).
//
// Data layouts (Atlas A2, C0 = 32 B / sizeof(T), fractal = 512 bytes):
//   L1 (from Nd2Nz): "NZ", column chunks of C0 elements, rows of 32 bytes.
//   L0A (A, M x K):  "ZZ": fractal (mb, kb) at index mb * Kf + kb, 16 rows x C0 columns row-major.
//   L0B (B, K x N):  "ZN": fractal (kb, nb) at index kb * Nf + nb, stored column by column
//                    (16 columns of C0 k-values).
//   L0C (C, M x N):  "NZ": fractal (mb, nb) at index nb * Mf + mb, 16 x 16 row-major.
// with Mf = ceil(m/16), Nf = ceil(n/16), Kf = ceil(k/C0) (float with kDirectionAlign:
// ceil(k/16) * 2). Only the valid m x n x k part takes part in Mmad (padding is ignored, as
// documented); with m == 1 the hardware's GEMV mode reads A from L0A as a plain vector of k
// elements. A kernel that lays data out differently gets wrong numbers, as on hardware.
// Cube instructions execute on AIC cores only (no-ops on AIV, as in CANN's API layer).
#ifndef TESSERA_ASCENDC_CPU_CUBE_H
#define TESSERA_ASCENDC_CPU_CUBE_H

#include "tensor.h"

namespace AscendC {

/// L1 (A1/B1) -> L0A (A2) / L0B (B2): repeatTimes 512-byte fractals, source fractal
/// startIndex + i * srcStride, destination i * (1 + dstGap); ifTranspose transposes each
/// 16 x 16 fractal (16-bit types only).
template <typename T>
inline void LoadData(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const LoadData2DParams& p)
{
    using namespace tessera_ascendc_cpu;
    if (Core().coreType != AIC) return;
    if (p.repeatTimes == 0) return;
    if (p.ifTranspose && sizeof(T) != 2) {
        Fail(Str("LoadData(L1 -> L0, ifTranspose): fractal transpose only supports 16-bit types, got ",
            TypeName<T>()));
    }
    if (p.addrMode != 0) Fail("LoadData(L1 -> L0): addrMode must be 0 for L1 -> L0A/L0B");
    uint64_t maxSrc = p.startIndex + static_cast<uint64_t>(p.repeatTimes - 1) * p.srcStride;
    uint64_t dstNeed = (static_cast<uint64_t>(p.repeatTimes - 1) * (1u + p.dstGap) + 1) * 512;
    const uint8_t* s = CheckLocal(srcLocal.tessera_ref_, "LoadData src", (maxSrc + 1) * 512, 32, {Hardware::L1});
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, "LoadData dst", dstNeed, 512, {Hardware::L0A, Hardware::L0B});
    for (uint64_t i = 0; i < p.repeatTimes; ++i) {
        const uint8_t* in = s + (p.startIndex + i * p.srcStride) * 512;
        uint8_t* out = d + i * (1u + p.dstGap) * 512;
        if (!p.ifTranspose) {
            std::memmove(out, in, 512);
        } else {
            uint8_t tmp[512];
            for (int r = 0; r < 16; ++r) {
                for (int c = 0; c < 16; ++c) std::memcpy(tmp + (c * 16 + r) * 2, in + (r * 16 + c) * 2, 2);
            }
            std::memcpy(out, tmp, 512);
        }
    }
}

/// L1 (A1/B1) -> L0A (A2) / L0B (B2) with transpose. Each repeat takes one square block at
/// source offset (startIndex + i * srcStride) x square size, transposes it and writes it as
/// 512-byte fractals, the first at i * (1 + dstGap) x 512 B, the next (1 + dstFracGap) x 512 B
/// further. 16-bit: the square is one 16 x 16 fractal. 32-bit: two consecutive 16 x 8
/// fractals side by side form a 16 x 16 square; its transpose is split into columns 0-7 and
/// 8-15. 8-bit: two consecutive 16 x 32 fractals stacked form a 32 x 32 square; its transpose
/// is split into rows 0-15 and 16-31.
template <typename T>
inline void LoadDataWithTranspose(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal,
    const LoadData2dTransposeParams& p)
{
    using namespace tessera_ascendc_cpu;
    if (Core().coreType != AIC) return;
    static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4, "LoadDataWithTranspose: 8/16/32-bit types");
    if (p.repeatTimes == 0) return;
    constexpr uint64_t fracs = sizeof(T) == 2 ? 1 : 2;  // fractals per square
    const uint64_t square = fracs * 512;
    uint64_t maxSrc = p.startIndex + static_cast<uint64_t>(p.repeatTimes - 1) * p.srcStride;
    uint64_t lastFirst = static_cast<uint64_t>(p.repeatTimes - 1) * (1u + p.dstGap);
    uint64_t dstNeed = (lastFirst + (fracs - 1) * (1u + p.dstFracGap) + 1) * 512;
    const uint8_t* s = CheckLocal(srcLocal.tessera_ref_, "LoadDataWithTranspose src", (maxSrc + 1) * square, 32,
        {Hardware::L1});
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, "LoadDataWithTranspose dst", dstNeed, 512,
        {Hardware::L0A, Hardware::L0B});
    constexpr int side = sizeof(T) == 1 ? 32 : 16;  // square side in elements
    for (uint64_t i = 0; i < p.repeatTimes; ++i) {
        const uint8_t* in = s + (p.startIndex + i * p.srcStride) * square;
        // square[r][c] as element positions in `in`
        auto at = [&](int r, int c) -> const uint8_t* {
            if constexpr (sizeof(T) == 4) {
                return in + ((c < 8 ? 0 : 512) + (r * 8 + c % 8) * 4);  // side by side 16 x 8
            } else {
                return in + static_cast<size_t>(r * side + c) * sizeof(T);  // 16x16, or stacked 16x32
            }
        };
        uint8_t tr[1024];  // transposed square, row-major side x side
        for (int r = 0; r < side; ++r) {
            for (int c = 0; c < side; ++c) std::memcpy(tr + (r * side + c) * sizeof(T), at(c, r), sizeof(T));
        }
        for (uint64_t f = 0; f < fracs; ++f) {
            uint8_t* out = d + (i * (1u + p.dstGap) + f * (1u + p.dstFracGap)) * 512;
            if constexpr (sizeof(T) == 4) {
                for (int r = 0; r < 16; ++r) {
                    for (int c = 0; c < 8; ++c) std::memcpy(out + (r * 8 + c) * 4, tr + (r * 16 + f * 8 + c) * 4, 4);
                }
            } else {
                std::memcpy(out, tr + f * 512, 512);
            }
        }
    }
}

/// C (L0C, CO1) = A (L0A, A2) x B (L0B, B2) [+ C when cmatrixInitVal is false or isBias is true].
template <typename DstT, typename Src0T, typename Src1T>
inline void Mmad(const LocalTensor<DstT>& dstLocal, const LocalTensor<Src0T>& fmLocal,
    const LocalTensor<Src1T>& filterLocal, const MmadParams& p)
{
    using namespace tessera_ascendc_cpu;
    if (Core().coreType != AIC) return;
    constexpr bool okTypes = (std::is_same_v<Src0T, Src1T>) &&
        ((std::is_same_v<DstT, float> &&
             (std::is_same_v<Src0T, half> || std::is_same_v<Src0T, float> || std::is_same_v<Src0T, bfloat16_t>)) ||
            (std::is_same_v<DstT, int32_t> && std::is_same_v<Src0T, int8_t>));
    if constexpr (!okTypes) {
        Fail(Str("Mmad: dtype combination A=", TypeName<Src0T>(), ", B=", TypeName<Src1T>(), " -> C=", TypeName<DstT>(),
            " is not supported on Atlas A2 (half/half->float, float/float->float, bfloat16_t/bfloat16_t->float, "
            "int8_t/int8_t->int32_t)"));
    } else {
        if (p.m == 0 || p.n == 0 || p.k == 0) return;
        if (p.m > 4095 || p.n > 4095 || p.k > 4095) Fail(Str("Mmad: m, n, k must be <= 4095"));
        if (p.cmatrixSource) {
            Fail("Mmad: cmatrixSource = true (C initialised from the BiasTable) is not supported by the CPU build");
        }
        const uint64_t c0 = 32 / sizeof(Src0T);
        const uint64_t kUnit = (std::is_same_v<Src0T, float> && p.kDirectionAlign) ? 16 : c0;
        const uint64_t kf = (p.k + kUnit - 1) / kUnit * kUnit / c0;
        const uint64_t mf = (p.m + 15) / 16;
        const uint64_t nf = (p.n + 15) / 16;
        const bool gemv = p.m == 1;
        uint64_t aBytes = gemv ? p.k * sizeof(Src0T) : mf * kf * 512;
        const uint8_t* a = CheckLocal(fmLocal.tessera_ref_, "Mmad A (fm)", aBytes, 512, {Hardware::L0A});
        const uint8_t* b = CheckLocal(filterLocal.tessera_ref_, "Mmad B (filter)", kf * nf * 512, 512, {Hardware::L0B});
        uint8_t* c = CheckLocal(dstLocal.tessera_ref_, "Mmad C (dst)", nf * mf * 256 * sizeof(DstT), 64,
            {Hardware::L0C});
        const bool accumulate = !(p.cmatrixInitVal && !p.isBias);
        for (uint64_t i = 0; i < p.m; ++i) {
            for (uint64_t j = 0; j < p.n; ++j) {
                double sum = 0.0;
                int64_t isum = 0;
                for (uint64_t kk = 0; kk < p.k; ++kk) {
                    uint64_t ai = gemv ? kk : ((i / 16) * kf + kk / c0) * 16 * c0 + (i % 16) * c0 + kk % c0;
                    uint64_t bi = ((kk / c0) * nf + j / 16) * c0 * 16 + (j % 16) * c0 + kk % c0;
                    Src0T av = LoadElem<Src0T>(a + ai * sizeof(Src0T));
                    Src1T bv = LoadElem<Src1T>(b + bi * sizeof(Src1T));
                    if constexpr (std::is_same_v<DstT, int32_t>) isum += static_cast<int64_t>(av) * bv;
                    else sum += ToDouble(av) * ToDouble(bv);
                }
                uint64_t ci = ((j / 16) * mf + i / 16) * 256 + (i % 16) * 16 + j % 16;
                uint8_t* cp = c + ci * sizeof(DstT);
                if constexpr (std::is_same_v<DstT, int32_t>) {
                    int64_t base = accumulate ? LoadElem<int32_t>(cp) : 0;
                    StoreElem<int32_t>(cp, static_cast<int32_t>(base + isum));
                } else {
                    double base = accumulate ? static_cast<double>(LoadElem<float>(cp)) : 0.0;
                    StoreElem<float>(cp, static_cast<float>(base + sum));
                }
            }
        }
    }
}

/// L0C (CO1, NZ) -> GM. CFG_ROW_MAJOR converts to ND: element (m, n) of ND matrix nd is read
/// from nd * srcNdStride * 256 + (n / 16) * srcStride * 16 + m * 16 + n % 16 and written to
/// nd * dstNdStride + m * dstStride + n. CFG_NZ keeps NZ (dstStride in 32-byte blocks).
/// float -> half / bfloat16_t needs quantPre F322F16 / F322BF16 (round to nearest even).
template <typename DstT, typename SrcT, const FixpipeConfig& config = CFG_ROW_MAJOR>
inline void Fixpipe(const GlobalTensor<DstT>& dstGlobal, const LocalTensor<SrcT>& srcLocal,
    const FixpipeParamsV220& p)
{
    using namespace tessera_ascendc_cpu;
    if (Core().coreType != AIC) return;
    const char* what = config.format == CO2Layout::ROW_MAJOR ? "Fixpipe(L0C -> GM, NZ2ND)" : "Fixpipe(L0C -> GM, NZ)";
    if (config.format == CO2Layout::COLUMN_MAJOR) Fail("Fixpipe: CFG_COLUMN_MAJOR is not available on Atlas A2");
    QuantMode_t want = NoQuant;
    bool okTypes = false;
    if constexpr (std::is_same_v<SrcT, float>) {
        if constexpr (std::is_same_v<DstT, float>) { okTypes = true; want = NoQuant; }
        else if constexpr (std::is_same_v<DstT, half>) { okTypes = true; want = F322F16; }
        else if constexpr (std::is_same_v<DstT, bfloat16_t>) { okTypes = true; want = F322BF16; }
    } else if constexpr (std::is_same_v<SrcT, int32_t>) {
        if constexpr (std::is_same_v<DstT, int32_t>) { okTypes = true; want = NoQuant; }
    }
    if (!okTypes) {
        Fail(Str(what, ": ", TypeName<SrcT>(), " -> ", TypeName<DstT>(), " is not supported by the CPU build "
            "(float -> float/half/bfloat16_t, int32_t -> int32_t)"));
    }
    if (p.quantPre != want) {
        Fail(Str(what, ": ", TypeName<SrcT>(), " -> ", TypeName<DstT>(), " needs quantPre = QuantMode_t::",
            want == NoQuant ? "NoQuant" : (want == F322F16 ? "F322F16" : "F322BF16"), " (got ", int(p.quantPre), ")"));
    }
    if (p.isChannelSplit) Fail(Str(what, ": isChannelSplit is not supported by the CPU build"));
    if (p.nSize == 0 || p.mSize == 0) return;
    if (p.nSize > 4095) Fail(Str(what, ": nSize ", p.nSize, " outside [1, 4095]"));
    if (p.dstStride == 0) Fail(Str(what, ": dstStride must not be 0"));
    const uint64_t nSize = p.nSize, mSize = p.mSize;
    std::vector<std::pair<uint64_t, uint64_t>> moves;  // (src element, dst element)
    if (config.format == CO2Layout::ROW_MAJOR) {
        if (p.mSize > 8192) Fail(Str(what, ": mSize ", p.mSize, " outside [1, 8192] with NZ2ND"));
        if (p.ndNum == 0) return;
        for (uint64_t nd = 0; nd < p.ndNum; ++nd) {
            for (uint64_t m = 0; m < mSize; ++m) {
                for (uint64_t n = 0; n < nSize; ++n) {
                    uint64_t si = nd * p.srcNdStride * 256ull + (n / 16) * p.srcStride * 16ull + m * 16 + n % 16;
                    uint64_t di = nd * p.dstNdStride + m * static_cast<uint64_t>(p.dstStride) + n;
                    moves.emplace_back(si, di);
                }
            }
        }
    } else {
        if (p.nSize % 16 != 0) Fail(Str(what, ": nSize ", p.nSize, " must be a multiple of 16 for NZ output"));
        const uint64_t dstBlockElems = 32 / sizeof(DstT);
        for (uint64_t m = 0; m < mSize; ++m) {
            for (uint64_t n = 0; n < nSize; ++n) {
                uint64_t si = (n / 16) * p.srcStride * 16ull + m * 16 + n % 16;
                uint64_t di = (n / 16) * static_cast<uint64_t>(p.dstStride) * dstBlockElems + m * 16 + n % 16;
                moves.emplace_back(si, di);
            }
        }
    }
    uint64_t srcMax = 0, dstMin = UINT64_MAX, dstMax = 0;
    for (auto& mv : moves) {
        srcMax = std::max(srcMax, mv.first + 1);
        dstMin = std::min(dstMin, mv.second);
        dstMax = std::max(dstMax, mv.second + 1);
    }
    const uint8_t* s = CheckLocal(srcLocal.tessera_ref_, Str(what, " src").c_str(), srcMax * sizeof(SrcT), 64,
        {Hardware::L0C});
    DstT* d = dstGlobal.TesseraCheck(dstMin, dstMax - dstMin, Str(what, " dst").c_str()) - dstMin;
    for (auto& mv : moves) {
        double v = ToDouble(LoadElem<SrcT>(s + mv.first * sizeof(SrcT)));
        if (p.reluEn && v < 0.0) v = 0.0;
        StoreElem<DstT>(reinterpret_cast<uint8_t*>(d + mv.second), FromDouble<DstT>(v, Rnd::kRint));
    }
}

}  // namespace AscendC

#endif  // TESSERA_ASCENDC_CPU_CUBE_H
