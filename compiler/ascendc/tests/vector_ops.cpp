// The remaining vector subset on one AIV core, each result checked against a host reference:
// binary/scalar/unary ops, Duplicate, Cast (rounding modes, half and bfloat16_t), Compare +
// Select, WholeReduceSum (including the documented half saturation example), WholeReduceMax,
// Brcb, strided DataCopyParams, DataCopyPad padding rules, GetValue/SetValue.
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

constexpr int32_t N = 256;   // elements per operand (a multiple of 256 bytes for Compare)
constexpr int32_t SLOTS = 40;  // result segments of N floats

// result segment ids
enum Seg {
    S_SUB, S_MUL, S_DIV, S_MAX, S_MIN, S_ADDS, S_MULS, S_MAXS, S_MINS, S_EXP, S_LN, S_SQRT, S_RSQRT, S_RECIP, S_ABS,
    S_RELU, S_DUP, S_F2H2F, S_H2F_ADD, S_F2I_FLOOR, S_F2I_CEIL, S_F2I_ROUND, S_F2I_TRUNC, S_F2I_RINT, S_BF16,
    S_SELECT, S_SELECT_SCALAR, S_WRS, S_WRMAX, S_BRCB, S_STRIDED, S_PAD, S_SCALAR, S_HALF_SAT, S_CMP_BITS,
};

class KernelVectorOps {
public:
    __aicore__ inline KernelVectorOps() {}
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR y, GM_ADDR out)
    {
        xGm.SetGlobalBuffer((__gm__ float*)x, N);
        yGm.SetGlobalBuffer((__gm__ float*)y, N);
        outGm.SetGlobalBuffer((__gm__ float*)out, N * SLOTS);
        pipe.InitBuffer(xBuf, N * sizeof(float));
        pipe.InitBuffer(yBuf, N * sizeof(float));
        pipe.InitBuffer(rBuf, N * sizeof(float));
        pipe.InitBuffer(tBuf, N * sizeof(float));
        pipe.InitBuffer(hBuf, N * sizeof(half) * 2);
        pipe.InitBuffer(iBuf, N * sizeof(int32_t));
        pipe.InitBuffer(mBuf, 256);
    }
    __aicore__ inline void Process()
    {
        AscendC::LocalTensor<float> x = xBuf.Get<float>();
        AscendC::LocalTensor<float> y = yBuf.Get<float>();
        AscendC::LocalTensor<float> r = rBuf.Get<float>();
        AscendC::DataCopy(x, xGm, N);
        AscendC::DataCopy(y, yGm, N);
        AscendC::SetFlag<AscendC::HardEvent::MTE2_V>(EVENT_ID0);
        AscendC::WaitFlag<AscendC::HardEvent::MTE2_V>(EVENT_ID0);

        AscendC::Sub(r, x, y, N); Out(S_SUB, r);
        AscendC::Mul(r, x, y, N); Out(S_MUL, r);
        AscendC::Div(r, x, y, N); Out(S_DIV, r);
        AscendC::Max(r, x, y, N); Out(S_MAX, r);
        AscendC::Min(r, x, y, N); Out(S_MIN, r);
        AscendC::Adds(r, x, 1.5f, N); Out(S_ADDS, r);
        AscendC::Muls(r, x, -0.25f, N); Out(S_MULS, r);
        AscendC::Maxs(r, x, 0.5f, N); Out(S_MAXS, r);
        AscendC::Mins(r, x, 0.5f, N); Out(S_MINS, r);
        AscendC::Exp(r, x, N); Out(S_EXP, r);
        AscendC::Ln(r, y, N); Out(S_LN, r);
        AscendC::Sqrt(r, y, N); Out(S_SQRT, r);
        AscendC::Rsqrt(r, y, N); Out(S_RSQRT, r);
        AscendC::Reciprocal(r, y, N); Out(S_RECIP, r);
        AscendC::Abs(r, x, N); Out(S_ABS, r);
        AscendC::Relu(r, x, N); Out(S_RELU, r);
        AscendC::Duplicate(r, 2.75f, N); Out(S_DUP, r);

        // float -> half (RINT) -> float
        AscendC::LocalTensor<half> h = hBuf.Get<half>();
        AscendC::Cast(h, x, AscendC::RoundMode::CAST_RINT, N);
        AscendC::Cast(r, h, AscendC::RoundMode::CAST_NONE, N); Out(S_F2H2F, r);
        // half arithmetic: h + h rounds once in half
        AscendC::Add(h[N], h, h, N);
        AscendC::Cast(r, h[N], AscendC::RoundMode::CAST_NONE, N); Out(S_H2F_ADD, r);
        // float -> int32 with each rounding mode, back to float for the output
        AscendC::LocalTensor<int32_t> iv = iBuf.Get<int32_t>();
        const AscendC::RoundMode modes[] = {AscendC::RoundMode::CAST_FLOOR, AscendC::RoundMode::CAST_CEIL,
            AscendC::RoundMode::CAST_ROUND, AscendC::RoundMode::CAST_TRUNC, AscendC::RoundMode::CAST_RINT};
        for (int i = 0; i < 5; ++i) {
            AscendC::Muls(r, x, 3.0f, N);
            AscendC::Cast(iv, r, modes[i], N);
            AscendC::Cast(r, iv, AscendC::RoundMode::CAST_NONE, N);
            Out(S_F2I_FLOOR + i, r);
        }
        // float -> bfloat16_t -> float
        AscendC::LocalTensor<bfloat16_t> b = hBuf.Get<bfloat16_t>();
        AscendC::Cast(b, x, AscendC::RoundMode::CAST_RINT, N);
        AscendC::Cast(r, b, AscendC::RoundMode::CAST_NONE, N); Out(S_BF16, r);

        // Compare (x < y) then Select
        AscendC::LocalTensor<uint8_t> mask = mBuf.Get<uint8_t>();
        AscendC::Compare(mask, x, y, AscendC::CMPMODE::LT, N);
        AscendC::Select(r, mask, x, y, AscendC::SELMODE::VSEL_TENSOR_TENSOR_MODE, N); Out(S_SELECT, r);
        AscendC::Select(r, mask, x, -1.0f, AscendC::SELMODE::VSEL_TENSOR_SCALAR_MODE, N); Out(S_SELECT_SCALAR, r);
        AscendC::Duplicate(r, 0.0f, N);
        for (int i = 0; i < N / 8; ++i) r.SetValue(i, static_cast<float>(mask.GetValue(i)));
        Out(S_CMP_BITS, r);

        // one sum / max per 64-float repeat (4 repeats)
        AscendC::Duplicate(r, 0.0f, N);
        AscendC::WholeReduceSum(r, x, 64, 4, 1, 1, 8); Out(S_WRS, r);
        AscendC::Duplicate(r, 0.0f, N);
        AscendC::WholeReduceMax(r, x, 64, 4, 1, 1, 8); Out(S_WRMAX, r);
        // Brcb: 16 values, each broadcast to one 32-byte block
        AscendC::Brcb(r, x, 2, AscendC::BrcbRepeatParams(1, 8)); Out(S_BRCB, r);

        // strided UB -> UB copy: 4 blocks of 32 bytes, skipping one block in the source
        AscendC::Duplicate(r, 0.0f, N);
        AscendC::DataCopy(r, x, AscendC::DataCopyParams(4, 1, 1, 0)); Out(S_STRIDED, r);

        // DataCopyPad GM -> UB padding rules, 3 floats per block, 2 blocks
        AscendC::LocalTensor<float> t = tBuf.Get<float>();
        AscendC::Duplicate(t, 0.0f, N);
        AscendC::SetFlag<AscendC::HardEvent::V_MTE2>(EVENT_ID0);
        AscendC::WaitFlag<AscendC::HardEvent::V_MTE2>(EVENT_ID0);
        AscendC::DataCopyExtParams p3{2, 3 * sizeof(float), 4, 0, 0};  // GM gap 4 bytes (1 float)
        AscendC::DataCopyPad(t, xGm, p3, AscendC::DataCopyPadExtParams<float>{true, 0, 0, 9.0f});
        AscendC::DataCopyPad(t[16], xGm, p3, AscendC::DataCopyPadExtParams<float>{true, 1, 2, 9.0f});
        AscendC::SetFlag<AscendC::HardEvent::MTE2_V>(EVENT_ID0);
        AscendC::WaitFlag<AscendC::HardEvent::MTE2_V>(EVENT_ID0);
        Out(S_PAD, t);

        // scalar access
        AscendC::Duplicate(r, 0.0f, N);
        for (int i = 0; i < 8; ++i) r.SetValue(i, x.GetValue(i) * 2.0f);
        r(8) = 123.0f;
        Out(S_SCALAR, r);

        // documented half WholeReduceSum saturation: [60000, 60000, -30000, 100] -> 35604
        AscendC::LocalTensor<half> hs = hBuf.Get<half>();
        AscendC::Duplicate(hs, half(0.0f), 128);
        hs.SetValue(0, half(60000.0f));
        hs.SetValue(1, half(60000.0f));
        hs.SetValue(2, half(-30000.0f));
        hs.SetValue(3, half(100.0f));
        AscendC::WholeReduceSum(hs[128], hs, 4, 1, 1, 1, 8);
        AscendC::Duplicate(r, 0.0f, N);
        AscendC::Cast(r, hs[128], AscendC::RoundMode::CAST_NONE, 16);
        Out(S_HALF_SAT, r);
    }

private:
    __aicore__ inline void Out(int seg, const AscendC::LocalTensor<float>& r)
    {
        AscendC::SetFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
        AscendC::WaitFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
        AscendC::DataCopy(outGm[seg * N], r, N);
        AscendC::SetFlag<AscendC::HardEvent::MTE3_V>(EVENT_ID0);
        AscendC::WaitFlag<AscendC::HardEvent::MTE3_V>(EVENT_ID0);
    }

    AscendC::TPipe pipe;
    AscendC::TBuf<AscendC::TPosition::VECCALC> xBuf, yBuf, rBuf, tBuf, hBuf, iBuf, mBuf;
    AscendC::GlobalTensor<float> xGm, yGm, outGm;
};

extern "C" __global__ __aicore__ void vector_ops(GM_ADDR x, GM_ADDR y, GM_ADDR out)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    KernelVectorOps op;
    op.Init(x, y, out);
    op.Process();
}

static float H(float v) { return static_cast<float>(half(v)); }

int main()
{
    CHECK_ACL(aclInit(nullptr));
    CHECK_ACL(aclrtSetDevice(0));
    std::vector<float> x(N), y(N), out(N * SLOTS);
    TestRng rng(7);
    for (int i = 0; i < N; ++i) {
        x[i] = static_cast<float>(rng.Next(-4.0, 4.0));
        y[i] = static_cast<float>(rng.Next(0.5, 4.0));
    }
    x[0] = 0.5f / 3.0f;   // 3x = 0.5: ties for the rounding modes
    x[1] = -2.5f / 3.0f;  // 3x = -2.5
    x[2] = 1.5f / 3.0f;
    uint8_t *xd, *yd, *od;
    CHECK_ACL(aclrtMalloc((void**)&xd, N * sizeof(float), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&yd, N * sizeof(float), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&od, N * SLOTS * sizeof(float), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemcpy(xd, N * sizeof(float), x.data(), N * sizeof(float), ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_ACL(aclrtMemcpy(yd, N * sizeof(float), y.data(), N * sizeof(float), ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_ACL(aclrtMemset(od, N * SLOTS * sizeof(float), 0, N * SLOTS * sizeof(float)));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(vector_ops, 1, xd, yd, od);
#else
    vector_ops<<<1, nullptr, nullptr>>>(xd, yd, od);
#endif
    CHECK_ACL(aclrtMemcpy(out.data(), out.size() * sizeof(float), od, out.size() * sizeof(float),
        ACL_MEMCPY_DEVICE_TO_HOST));
    auto seg = [&](int s, int i) { return out[s * N + i]; };
    for (int i = 0; i < N; ++i) {
        float a = x[i], b = y[i];
        // exact IEEE float ops: bit-exact
        EXPECT(seg(S_SUB, i) == a - b, "Sub[%d]", i);
        EXPECT(seg(S_MUL, i) == a * b, "Mul[%d]", i);
        EXPECT(seg(S_DIV, i) == a / b, "Div[%d]", i);
        EXPECT(seg(S_MAX, i) == std::fmax(a, b), "Max[%d]", i);
        EXPECT(seg(S_MIN, i) == std::fmin(a, b), "Min[%d]", i);
        EXPECT(seg(S_ADDS, i) == a + 1.5f, "Adds[%d]", i);
        EXPECT(seg(S_MULS, i) == a * -0.25f, "Muls[%d]", i);
        EXPECT(seg(S_MAXS, i) == std::fmax(a, 0.5f), "Maxs[%d]", i);
        EXPECT(seg(S_MINS, i) == std::fmin(a, 0.5f), "Mins[%d]", i);
        EXPECT(seg(S_SQRT, i) == std::sqrt(b), "Sqrt[%d]", i);
        EXPECT(seg(S_ABS, i) == std::fabs(a), "Abs[%d]", i);
        EXPECT(seg(S_RELU, i) == (a > 0 ? a : 0.0f), "Relu[%d]", i);
        EXPECT(seg(S_DUP, i) == 2.75f, "Duplicate[%d]", i);
        // transcendental: the CPU build rounds the exact value once; hardware is within a few ulp
        EXPECT(std::fabs(seg(S_EXP, i) - std::exp(a)) <= 1e-6f * std::exp(a), "Exp[%d]", i);
        EXPECT(std::fabs(seg(S_LN, i) - std::log(b)) <= 1e-6f, "Ln[%d]", i);
        EXPECT(std::fabs(seg(S_RSQRT, i) - 1.0f / std::sqrt(b)) <= 1e-6f, "Rsqrt[%d]", i);
        EXPECT(std::fabs(seg(S_RECIP, i) - 1.0f / b) <= 1e-6f, "Reciprocal[%d]", i);
        // half round trips: exact
        EXPECT(seg(S_F2H2F, i) == H(a), "Cast f32->f16->f32[%d]: %g vs %g", i, seg(S_F2H2F, i), H(a));
        EXPECT(seg(S_H2F_ADD, i) == H(H(a) + H(a)), "half Add[%d]", i);
        float t = a * 3.0f;
        EXPECT(seg(S_F2I_FLOOR, i) == std::floor(t), "CAST_FLOOR[%d]", i);
        EXPECT(seg(S_F2I_CEIL, i) == std::ceil(t), "CAST_CEIL[%d]", i);
        EXPECT(seg(S_F2I_ROUND, i) == std::round(t), "CAST_ROUND[%d]", i);
        EXPECT(seg(S_F2I_TRUNC, i) == std::trunc(t), "CAST_TRUNC[%d]", i);
        EXPECT(seg(S_F2I_RINT, i) == std::nearbyint(t), "CAST_RINT[%d]", i);
        EXPECT(seg(S_BF16, i) == static_cast<float>(bfloat16_t(a)), "Cast f32->bf16->f32[%d]", i);
        EXPECT(seg(S_SELECT, i) == (a < b ? a : b), "Select[%d]", i);
        EXPECT(seg(S_SELECT_SCALAR, i) == (a < b ? a : -1.0f), "Select scalar[%d]", i);
    }
    EXPECT(seg(S_F2I_ROUND, 0) == 1.0f && seg(S_F2I_RINT, 0) == 0.0f, "tie 0.5: ROUND->1, RINT->0");
    EXPECT(seg(S_F2I_ROUND, 1) == -3.0f && seg(S_F2I_RINT, 1) == -2.0f, "tie -2.5: ROUND->-3, RINT->-2");
    for (int byte = 0; byte < N / 8; ++byte) {
        int want = 0;
        for (int bit = 0; bit < 8; ++bit) want |= (x[byte * 8 + bit] < y[byte * 8 + bit]) << bit;
        EXPECT(seg(S_CMP_BITS, byte) == static_cast<float>(want), "Compare bits byte %d", byte);
    }
    for (int rep = 0; rep < 4; ++rep) {
        double s = 0.0, mx = -1e30;
        int arg = 0;
        for (int j = 0; j < 64; ++j) {
            s += x[rep * 64 + j];
            if (x[rep * 64 + j] > mx) { mx = x[rep * 64 + j]; arg = j; }
        }
        EXPECT(std::fabs(seg(S_WRS, rep) - s) <= 1e-5, "WholeReduceSum[%d] %g vs %g", rep, seg(S_WRS, rep), s);
        EXPECT(seg(S_WRMAX, 2 * rep) == static_cast<float>(mx), "WholeReduceMax value[%d]", rep);
        uint32_t idx;
        float iv = seg(S_WRMAX, 2 * rep + 1);
        std::memcpy(&idx, &iv, 4);
        EXPECT(idx == static_cast<uint32_t>(arg), "WholeReduceMax index[%d] %u vs %d", rep, idx, arg);
    }
    EXPECT(seg(S_WRS, 4) == 0.0f, "WholeReduceSum wrote past 4 repeats");
    for (int i = 0; i < 128; ++i) EXPECT(seg(S_BRCB, i) == x[i / 8], "Brcb[%d]", i);
    for (int blk = 0; blk < 4; ++blk) {
        for (int e = 0; e < 8; ++e) {
            EXPECT(seg(S_STRIDED, blk * 8 + e) == x[blk * 16 + e], "strided DataCopy block %d elem %d", blk, e);
        }
    }
    EXPECT(seg(S_STRIDED, 32) == 0.0f, "strided DataCopy wrote past 4 blocks");
    // block 0: x0 x1 x2 then dummy = first element (no left/right padding, even with isPad)
    // block 1: from GM element 4 (3 floats + 4-byte gap)
    float pad0[8] = {x[0], x[1], x[2], x[0], x[0], x[0], x[0], x[0]};
    float pad1[8] = {x[4], x[5], x[6], x[4], x[4], x[4], x[4], x[4]};
    for (int e = 0; e < 8; ++e) {
        EXPECT(seg(S_PAD, e) == pad0[e], "DataCopyPad block 0 elem %d: %g vs %g", e, seg(S_PAD, e), pad0[e]);
        EXPECT(seg(S_PAD, 8 + e) == pad1[e], "DataCopyPad block 1 elem %d", e);
    }
    // with left 1 / right 2 padding: 9 x0 x1 x2 9 9 then dummy = paddingValue
    float padL[8] = {9, x[0], x[1], x[2], 9, 9, 9, 9};
    float padL1[8] = {9, x[4], x[5], x[6], 9, 9, 9, 9};
    for (int e = 0; e < 8; ++e) {
        EXPECT(seg(S_PAD, 16 + e) == padL[e], "DataCopyPad padded block 0 elem %d", e);
        EXPECT(seg(S_PAD, 24 + e) == padL1[e], "DataCopyPad padded block 1 elem %d", e);
    }
    for (int i = 0; i < 8; ++i) EXPECT(seg(S_SCALAR, i) == x[i] * 2.0f, "GetValue/SetValue[%d]", i);
    EXPECT(seg(S_SCALAR, 8) == 123.0f, "operator()");
    // the documentation's example [60000, 60000, -30000, 100] -> 35604 ignores rounding: in half,
    // 60000 + 60000 saturates to 65504, -30000 + 100 = -29904, and 65504 - 29904 = 35600 rounds
    // (tie, to even) to 35584; without the saturation the result would be +inf
    EXPECT(seg(S_HALF_SAT, 0) == 35584.0f, "half WholeReduceSum saturation: got %g, want 35584",
        seg(S_HALF_SAT, 0));
    CHECK_ACL(aclrtFree(xd));
    CHECK_ACL(aclrtFree(yd));
    CHECK_ACL(aclrtFree(od));
    CHECK_ACL(aclrtResetDevice(0));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
