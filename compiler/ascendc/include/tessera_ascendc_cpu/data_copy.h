// Tessera CPU build of the Ascend C API subset: data movement (DataCopy, DataCopyPad, ND->NZ).
//
// Units follow the Atlas A2 documentation: DataCopyParams lengths and gaps in 32-byte
// blocks; DataCopyExtParams blockLen in bytes, GM-side gaps in bytes, UB-side gaps in
// 32-byte blocks; each DataCopyPad block occupies a whole number of 32-byte blocks in UB.
// GM <-> UB copies run on AIV cores, GM -> L1 copies on AIC cores (no-ops elsewhere, as in
// CANN's API layer).
#ifndef TESSERA_ASCENDC_CPU_DATA_COPY_H
#define TESSERA_ASCENDC_CPU_DATA_COPY_H

#include "tensor.h"

namespace tessera_ascendc_cpu {

/// True if the running core executes instructions touching `hw` (UB: AIV; L1/L0: AIC).
inline bool CoreRuns(AscendC::Hardware hw)
{
    int32_t t = Core().coreType;
    if (hw == AscendC::Hardware::UB) return t == AscendC::AIV;
    if (hw == AscendC::Hardware::MAX) return true;  // let the checks report the empty tensor
    return t == AscendC::AIC;
}

/// Bytes spanned by `count` blocks of `len` bytes separated by gaps of `gap` bytes.
inline uint64_t Extent(uint64_t count, uint64_t len, uint64_t gap)
{
    return count == 0 ? 0 : (count - 1) * (len + gap) + len;
}

inline void CheckBlockCount(uint32_t blockCount, const char* what)
{
    if (blockCount > 4095) Fail(Str(what, ": blockCount ", blockCount, " is outside [0, 4095]"));
}

}  // namespace tessera_ascendc_cpu

namespace AscendC {

/// GM -> UB/L1, `calCount` contiguous elements (calCount * sizeof(T) must be a multiple of 32).
template <typename T>
inline void DataCopy(const LocalTensor<T>& dstLocal, const GlobalTensor<T>& srcGlobal, const uint32_t calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(dstLocal.tessera_ref_.hw)) return;
    uint64_t bytes = static_cast<uint64_t>(calCount) * sizeof(T);
    if (bytes % 32 != 0) {
        Fail(Str("DataCopy(GM -> TPosition::", PosName(dstLocal.tessera_ref_.pos), ", count=", calCount, " x ",
            TypeName<T>(), "): ", bytes, " bytes is not a multiple of 32 bytes (the hardware would silently drop the "
            "last ", bytes % 32, " bytes); use DataCopyPad for unaligned lengths"));
    }
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, "DataCopy(GM -> local) dst", bytes, 32, {Hardware::UB, Hardware::L1});
    const uint8_t* s = srcGlobal.TesseraCheckBytes(0, bytes, "DataCopy(GM -> local) src");
    std::memmove(d, s, bytes);
}

/// UB -> GM, `calCount` contiguous elements (calCount * sizeof(T) must be a multiple of 32).
template <typename T>
inline void DataCopy(const GlobalTensor<T>& dstGlobal, const LocalTensor<T>& srcLocal, const uint32_t calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(srcLocal.tessera_ref_.hw)) return;
    uint64_t bytes = static_cast<uint64_t>(calCount) * sizeof(T);
    if (bytes % 32 != 0) {
        Fail(Str("DataCopy(TPosition::", PosName(srcLocal.tessera_ref_.pos), " -> GM, count=", calCount, " x ",
            TypeName<T>(), "): ", bytes, " bytes is not a multiple of 32 bytes (the hardware would silently drop the "
            "last ", bytes % 32, " bytes); use DataCopyPad for unaligned lengths"));
    }
    const uint8_t* s = CheckLocal(srcLocal.tessera_ref_, "DataCopy(local -> GM) src", bytes, 32, {Hardware::UB});
    uint8_t* d = dstGlobal.TesseraCheckBytes(0, bytes, "DataCopy(local -> GM) dst");
    std::memmove(d, s, bytes);
}

/// UB -> UB, `calCount` contiguous elements (calCount * sizeof(T) must be a multiple of 32).
template <typename T>
inline void DataCopy(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const uint32_t calCount)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(dstLocal.tessera_ref_.hw)) return;
    uint64_t bytes = static_cast<uint64_t>(calCount) * sizeof(T);
    if (bytes % 32 != 0) {
        Fail(Str("DataCopy(local -> local, count=", calCount, " x ", TypeName<T>(), "): ", bytes,
            " bytes is not a multiple of 32 bytes"));
    }
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, "DataCopy(local -> local) dst", bytes, 32, {Hardware::UB});
    const uint8_t* s = CheckLocal(srcLocal.tessera_ref_, "DataCopy(local -> local) src", bytes, 32, {Hardware::UB});
    std::memmove(d, s, bytes);
}

/// GM -> UB/L1 in blocks of blockLen x 32 bytes, with gaps (in 32-byte blocks) on each side.
template <typename T>
inline void DataCopy(const LocalTensor<T>& dstLocal, const GlobalTensor<T>& srcGlobal, const DataCopyParams& p)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(dstLocal.tessera_ref_.hw)) return;
    CheckBlockCount(p.blockCount, "DataCopy(GM -> local, DataCopyParams)");
    if (p.blockCount == 0 || p.blockLen == 0) return;
    uint64_t len = p.blockLen * 32ull;
    uint64_t dExt = Extent(p.blockCount, len, p.dstStride * 32ull);
    uint64_t sExt = Extent(p.blockCount, len, p.srcStride * 32ull);
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, "DataCopy(GM -> local, DataCopyParams) dst", dExt, 32,
        {Hardware::UB, Hardware::L1});
    const uint8_t* s = srcGlobal.TesseraCheckBytes(0, sExt, "DataCopy(GM -> local, DataCopyParams) src");
    for (uint32_t b = 0; b < p.blockCount; ++b) {
        std::memmove(d + b * (len + p.dstStride * 32ull), s + b * (len + p.srcStride * 32ull), len);
    }
}

/// UB -> GM in blocks of blockLen x 32 bytes, with gaps (in 32-byte blocks) on each side.
template <typename T>
inline void DataCopy(const GlobalTensor<T>& dstGlobal, const LocalTensor<T>& srcLocal, const DataCopyParams& p)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(srcLocal.tessera_ref_.hw)) return;
    CheckBlockCount(p.blockCount, "DataCopy(local -> GM, DataCopyParams)");
    if (p.blockCount == 0 || p.blockLen == 0) return;
    uint64_t len = p.blockLen * 32ull;
    uint64_t dExt = Extent(p.blockCount, len, p.dstStride * 32ull);
    uint64_t sExt = Extent(p.blockCount, len, p.srcStride * 32ull);
    const uint8_t* s =
        CheckLocal(srcLocal.tessera_ref_, "DataCopy(local -> GM, DataCopyParams) src", sExt, 32, {Hardware::UB});
    uint8_t* d = dstGlobal.TesseraCheckBytes(0, dExt, "DataCopy(local -> GM, DataCopyParams) dst");
    for (uint32_t b = 0; b < p.blockCount; ++b) {
        std::memmove(d + b * (len + p.dstStride * 32ull), s + b * (len + p.srcStride * 32ull), len);
    }
}

/// UB -> UB in blocks of blockLen x 32 bytes, with gaps (in 32-byte blocks).
template <typename T>
inline void DataCopy(const LocalTensor<T>& dstLocal, const LocalTensor<T>& srcLocal, const DataCopyParams& p)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(dstLocal.tessera_ref_.hw)) return;
    CheckBlockCount(p.blockCount, "DataCopy(local -> local, DataCopyParams)");
    if (p.blockCount == 0 || p.blockLen == 0) return;
    uint64_t len = p.blockLen * 32ull;
    uint64_t dExt = Extent(p.blockCount, len, p.dstStride * 32ull);
    uint64_t sExt = Extent(p.blockCount, len, p.srcStride * 32ull);
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, "DataCopy(local -> local, DataCopyParams) dst", dExt, 32,
        {Hardware::UB});
    const uint8_t* s = CheckLocal(srcLocal.tessera_ref_, "DataCopy(local -> local, DataCopyParams) src", sExt, 32,
        {Hardware::UB});
    for (uint32_t b = 0; b < p.blockCount; ++b) {
        std::memmove(d + b * (len + p.dstStride * 32ull), s + b * (len + p.srcStride * 32ull), len);
    }
}

/// GM (ND) -> L1 (NZ): each row of each ND matrix is cut into C0 = 32 B / sizeof(T) column
/// chunks; chunk c of row r lands at c * dstNzC0Stride * 32 B + r * dstNzNStride * 32 B;
/// the last chunk is zero-padded when dValue is not a multiple of C0.
template <typename T>
inline void DataCopy(const LocalTensor<T>& dstLocal, const GlobalTensor<T>& srcGlobal, const Nd2NzParams& p)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(dstLocal.tessera_ref_.hw)) return;
    const char* what = "DataCopy(GM -> L1, Nd2NzParams)";
    if (p.ndNum == 0 || p.nValue == 0 || p.dValue == 0) return;
    if (p.ndNum > 4095) Fail(Str(what, ": ndNum ", p.ndNum, " outside [0, 4095]"));
    if (p.nValue > 16384) Fail(Str(what, ": nValue ", p.nValue, " outside [0, 16384]"));
    if (p.srcDValue < 1) Fail(Str(what, ": srcDValue must be >= 1"));
    if (p.dstNzC0Stride < 1 || p.dstNzC0Stride > 16384) {
        Fail(Str(what, ": dstNzC0Stride ", p.dstNzC0Stride, " outside [1, 16384]"));
    }
    if (p.dstNzNStride < 1 || p.dstNzNStride > 16384) {
        Fail(Str(what, ": dstNzNStride ", p.dstNzNStride, " outside [1, 16384]"));
    }
    if (p.dstNzMatrixStride > 16384) Fail(Str(what, ": dstNzMatrixStride ", p.dstNzMatrixStride, " outside [0, 16384]"));
    const uint64_t c0 = 32 / sizeof(T);
    const uint64_t chunks = (p.dValue + c0 - 1) / c0;
    // destination extent (bytes) and source extent (elements)
    uint64_t dExt = 0;
    uint64_t sExt = 0;
    for (uint64_t i = 0; i < p.ndNum; ++i) {
        uint64_t base = i * p.dstNzMatrixStride * sizeof(T);
        uint64_t last = base + (chunks - 1) * p.dstNzC0Stride * 32ull + (p.nValue - 1ull) * p.dstNzNStride * 32ull + 32;
        dExt = std::max<uint64_t>(dExt, last);
        sExt = std::max<uint64_t>(sExt, i * p.srcNdMatrixStride + (p.nValue - 1ull) * p.srcDValue + p.dValue);
    }
    uint8_t* d = CheckLocal(dstLocal.tessera_ref_, Str(what, " dst").c_str(), dExt, 32, {Hardware::L1});
    const T* s = srcGlobal.TesseraCheck(0, sExt, Str(what, " src").c_str());
    for (uint64_t i = 0; i < p.ndNum; ++i) {
        for (uint64_t r = 0; r < p.nValue; ++r) {
            const T* row = s + i * p.srcNdMatrixStride + r * p.srcDValue;
            for (uint64_t c = 0; c < chunks; ++c) {
                uint8_t* blk = d + i * p.dstNzMatrixStride * sizeof(T) + c * p.dstNzC0Stride * 32ull +
                    r * p.dstNzNStride * 32ull;
                for (uint64_t e = 0; e < c0; ++e) {
                    uint64_t col = c * c0 + e;
                    T v = col < p.dValue ? LoadElem<T>(reinterpret_cast<const uint8_t*>(row + col)) : T(0);
                    StoreElem<T>(blk + e * sizeof(T), v);
                }
            }
        }
    }
}

namespace tessera_pad_detail {
/// DataCopyPad GM -> UB with raw padding bytes.
template <typename T>
inline void PadIn(const LocalTensor<T>& dst, const GlobalTensor<T>& src, uint32_t blockCount, uint32_t blockLen,
    uint64_t srcGapBytes, uint64_t dstGapBlocks, bool isPad, uint32_t left, uint32_t right, const T& padValue,
    const char* what)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(dst.tessera_ref_.hw)) return;
    CheckBlockCount(blockCount, what);
    if (blockLen > 2097151) Fail(Str(what, ": blockLen ", blockLen, " bytes outside [1, 2097151]"));
    if (blockCount == 0 || blockLen == 0) return;
    if (blockLen % sizeof(T) != 0) {
        Fail(Str(what, ": blockLen ", blockLen, " bytes is not a multiple of sizeof(", TypeName<T>(), ") = ", sizeof(T)));
    }
    if (left * sizeof(T) > 32 || right * sizeof(T) > 32) {
        Fail(Str(what, ": leftPadding/rightPadding (", left, "/", right, " elements) may not exceed 32 bytes each"));
    }
    uint64_t padded = left * sizeof(T) + blockLen + right * sizeof(T);
    uint64_t ubBlock = (padded + 31) / 32 * 32;
    uint64_t dExt = Extent(blockCount, ubBlock, dstGapBlocks * 32);
    uint64_t sExt = Extent(blockCount, blockLen, srcGapBytes);
    uint8_t* d = CheckLocal(dst.tessera_ref_, Str(what, " dst").c_str(), dExt, 32, {Hardware::UB});
    const uint8_t* s = src.TesseraCheckBytes(0, sExt, Str(what, " src").c_str());
    for (uint64_t b = 0; b < blockCount; ++b) {
        uint8_t* out = d + b * (ubBlock + dstGapBlocks * 32);
        const uint8_t* in = s + b * (blockLen + srcGapBytes);
        // left and right paddings: the pad value, or undefined (0xFF bytes) without isPad
        for (uint32_t e = 0; e < left; ++e) {
            if (isPad) StoreElem<T>(out + e * sizeof(T), padValue);
            else std::memset(out + e * sizeof(T), 0xFF, sizeof(T));
        }
        std::memmove(out + left * sizeof(T), in, blockLen);
        for (uint32_t e = 0; e < right; ++e) {
            uint8_t* q = out + left * sizeof(T) + blockLen + e * sizeof(T);
            if (isPad) StoreElem<T>(q, padValue);
            else std::memset(q, 0xFF, sizeof(T));
        }
        // dummy fill up to the 32-byte boundary: the block's first element when there is no
        // left/right padding (whatever isPad says), else the pad value or undefined
        for (uint64_t q = padded; q < ubBlock; q += sizeof(T)) {
            if (left == 0 && right == 0) std::memmove(out + q, in, sizeof(T));
            else if (isPad) StoreElem<T>(out + q, padValue);
            else std::memset(out + q, 0xFF, sizeof(T));
        }
    }
}

/// DataCopyPad UB -> GM: writes exactly blockLen bytes per block.
template <typename T>
inline void PadOut(const GlobalTensor<T>& dst, const LocalTensor<T>& src, uint32_t blockCount, uint32_t blockLen,
    uint64_t srcGapBlocks, uint64_t dstGapBytes, const char* what)
{
    using namespace tessera_ascendc_cpu;
    if (!CoreRuns(src.tessera_ref_.hw)) return;
    CheckBlockCount(blockCount, what);
    if (blockLen > 2097151) Fail(Str(what, ": blockLen ", blockLen, " bytes outside [1, 2097151]"));
    if (blockCount == 0 || blockLen == 0) return;
    uint64_t ubBlock = (blockLen + 31ull) / 32 * 32;
    uint64_t sExt = Extent(blockCount, ubBlock, srcGapBlocks * 32);
    uint64_t sNeeded = sExt - ubBlock + blockLen;  // the last block's padding is not read
    uint64_t dExt = Extent(blockCount, blockLen, dstGapBytes);
    const uint8_t* s = CheckLocal(src.tessera_ref_, Str(what, " src").c_str(), sNeeded, 32, {Hardware::UB});
    uint8_t* d = dst.TesseraCheckBytes(0, dExt, Str(what, " dst").c_str());
    for (uint64_t b = 0; b < blockCount; ++b) {
        std::memmove(d + b * (blockLen + dstGapBytes), s + b * (ubBlock + srcGapBlocks * 32), blockLen);
    }
}
}  // namespace tessera_pad_detail

/// GM -> UB with byte-exact blocks and optional padding (A2).
template <typename T>
inline void DataCopyPad(const LocalTensor<T>& dstLocal, const GlobalTensor<T>& srcGlobal,
    const DataCopyExtParams& dataCopyParams, const DataCopyPadExtParams<T>& padParams)
{
    tessera_pad_detail::PadIn(dstLocal, srcGlobal, dataCopyParams.blockCount, dataCopyParams.blockLen,
        dataCopyParams.srcStride, dataCopyParams.dstStride, padParams.isPad, padParams.leftPadding,
        padParams.rightPadding, padParams.paddingValue, "DataCopyPad(GM -> UB, DataCopyExtParams)");
}

/// UB -> GM with byte-exact blocks (A2).
template <typename T>
inline void DataCopyPad(const GlobalTensor<T>& dstGlobal, const LocalTensor<T>& srcLocal,
    const DataCopyExtParams& dataCopyParams)
{
    tessera_pad_detail::PadOut(dstGlobal, srcLocal, dataCopyParams.blockCount, dataCopyParams.blockLen,
        dataCopyParams.srcStride, dataCopyParams.dstStride, "DataCopyPad(UB -> GM, DataCopyExtParams)");
}

/// GM -> UB, legacy parameter structs (blockLen in bytes).
template <typename T>
inline void DataCopyPad(const LocalTensor<T>& dstLocal, const GlobalTensor<T>& srcGlobal,
    const DataCopyParams& dataCopyParams, const DataCopyPadParams& padParams)
{
    T pad;
    std::memset(static_cast<void*>(&pad), 0, sizeof(T));
    std::memcpy(static_cast<void*>(&pad), &padParams.paddingValue, std::min(sizeof(T), sizeof(uint64_t)));
    tessera_pad_detail::PadIn(dstLocal, srcGlobal, dataCopyParams.blockCount, dataCopyParams.blockLen,
        dataCopyParams.srcStride, dataCopyParams.dstStride, padParams.isPad, padParams.leftPadding,
        padParams.rightPadding, pad, "DataCopyPad(GM -> UB, DataCopyParams)");
}

/// UB -> GM, legacy parameter struct (blockLen in bytes).
template <typename T>
inline void DataCopyPad(const GlobalTensor<T>& dstGlobal, const LocalTensor<T>& srcLocal,
    const DataCopyParams& dataCopyParams)
{
    tessera_pad_detail::PadOut(dstGlobal, srcLocal, dataCopyParams.blockCount, dataCopyParams.blockLen,
        dataCopyParams.srcStride, dataCopyParams.dstStride, "DataCopyPad(UB -> GM, DataCopyParams)");
}

}  // namespace AscendC

#endif  // TESSERA_ASCENDC_CPU_DATA_COPY_H
