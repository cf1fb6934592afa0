// C = A x B on the Cube unit, written like the CANN low-level matmul samples:
// GM -(DataCopy + Nd2NzParams)-> L1 (NZ) -(LoadData2DParams)-> L0A (ZZ) / L0B (ZN)
// -(Mmad, K split in chunks accumulated in L0C)-> L0C (NZ) -(Fixpipe, NZ2ND)-> GM.
// Cases: half A[MxK] x B[KxN] -> float and half C; float A[MxK] x B given as B^T[NxK]
// (so that Nd2Nz yields the float ZN fractals directly); M = 1 (GEMV mode, A read as a
// plain vector); float A given as A^T[KxM] and B[KxN] (both need a transpose: 16-row ND -> NZ
// blocks + LoadDataWithTranspose, kDirectionAlign); and a deliberately wrong L0B layout that
// must produce wrong numbers.
// Sizes are not multiples of 16; one AIC block per batch.
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

__aicore__ inline uint32_t CeilDiv(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

template <typename T, bool B_IS_TRANSPOSED>
class KernelMatmul {
public:
    static constexpr uint32_t C0 = 32 / sizeof(T);          // elements per fractal row
    static constexpr uint32_t FRAC = 512 / sizeof(T);       // elements per fractal
    static constexpr uint32_t KC = B_IS_TRANSPOSED ? 16 : 32;  // K chunk per Mmad

    __aicore__ inline KernelMatmul() {}
    __aicore__ inline void Init(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR ch, uint32_t m, uint32_t k, uint32_t n,
        uint32_t wrongLayout)
    {
        M = m; K = k; N = n;
        wrong = wrongLayout != 0;
        Mf = CeilDiv(M, 16); Nf = CeilDiv(N, 16); Kf = CeilDiv(K, C0);
        uint32_t batch = AscendC::GetBlockIdx();
        aGm.SetGlobalBuffer((__gm__ T*)a + batch * M * K, M * K);
        bGm.SetGlobalBuffer((__gm__ T*)b + batch * K * N, K * N);
        cGm.SetGlobalBuffer((__gm__ float*)c + batch * M * N, M * N);
        chGm.SetGlobalBuffer((__gm__ half*)ch + batch * M * N, M * N);
        pipe.InitBuffer(inQueueA1, 1, Mf * 16 * Kf * C0 * sizeof(T));
        uint32_t bL1 = B_IS_TRANSPOSED ? Nf * 16 * Kf * C0 : CeilDiv(K, 16) * 16 * Nf * 16;
        pipe.InitBuffer(inQueueB1, 1, bL1 * sizeof(T));
        pipe.InitBuffer(inQueueA2, 1, Mf * CeilDiv(KC, C0) * 512);
        pipe.InitBuffer(inQueueB2, 1, Nf * CeilDiv(KC, C0) * 512);
        pipe.InitBuffer(outQueueCO1, 1, Mf * Nf * 256 * sizeof(float));
    }
    __aicore__ inline void Process()
    {
        CopyIn();
        AscendC::LocalTensor<T> a1 = inQueueA1.DeQue<T>();
        AscendC::LocalTensor<T> b1 = inQueueB1.DeQue<T>();
        AscendC::LocalTensor<float> c1 = outQueueCO1.AllocTensor<float>();
        for (uint32_t k0 = 0; k0 < K; k0 += KC) {
            uint32_t kLen = K - k0 < KC ? K - k0 : KC;
            SplitA(a1, k0, kLen);
            SplitB(b1, k0, kLen);
            AscendC::LocalTensor<T> a2 = inQueueA2.DeQue<T>();
            AscendC::LocalTensor<T> b2 = inQueueB2.DeQue<T>();
            // {m, n, k, unitFlag, cmatrixSource, cmatrixInitVal}: accumulate after the first chunk
            AscendC::Mmad(c1, a2, b2, AscendC::MmadParams(M, N, kLen, 0, false, k0 == 0));
            AscendC::PipeBarrier<PIPE_M>();
            inQueueA2.FreeTensor(a2);
            inQueueB2.FreeTensor(b2);
        }
        outQueueCO1.EnQue(c1);
        inQueueA1.FreeTensor(a1);
        inQueueB1.FreeTensor(b1);
        CopyOut();
    }

private:
    __aicore__ inline void CopyIn()
    {
        AscendC::LocalTensor<T> a1 = inQueueA1.AllocTensor<T>();
        AscendC::LocalTensor<T> b1 = inQueueB1.AllocTensor<T>();
        if (M == 1) {
            // GEMV: A stays a plain vector of K elements
            AscendC::DataCopy(a1, aGm, K);
        } else {
            // {ndNum, nValue, dValue, srcNdMatrixStride, srcDValue, dstNzC0Stride, dstNzNStride, dstNzMatrixStride}
            AscendC::DataCopy(a1, aGm, AscendC::Nd2NzParams(1, M, K, 0, K, Mf * 16, 1, 0));
        }
        if (B_IS_TRANSPOSED) {
            AscendC::DataCopy(b1, bGm, AscendC::Nd2NzParams(1, N, K, 0, K, Nf * 16, 1, 0));
        } else {
            AscendC::DataCopy(b1, bGm, AscendC::Nd2NzParams(1, K, N, 0, N, CeilDiv(K, 16) * 16, 1, 0));
        }
        inQueueA1.EnQue(a1);
        inQueueB1.EnQue(b1);
    }
    __aicore__ inline void SplitA(const AscendC::LocalTensor<T>& a1, uint32_t k0, uint32_t kLen)
    {
        AscendC::LocalTensor<T> a2 = inQueueA2.AllocTensor<T>();
        uint32_t kb0 = k0 / C0, kfc = CeilDiv(kLen, C0);
        if (M == 1) {
            // one fractal holds the whole vector chunk
            AscendC::LoadData(a2, a1[k0], AscendC::LoadData2DParams(0, 1, 1, 0, 0, false, 0));
        } else {
            // NZ -> ZZ: for each row of fractals, the k-fractals of this chunk
            for (uint32_t mb = 0; mb < Mf; ++mb) {
                AscendC::LoadData(a2[mb * kfc * FRAC], a1[(kb0 * Mf + mb) * FRAC],
                    AscendC::LoadData2DParams(0, kfc, Mf, 0, 0, false, 0));
            }
        }
        inQueueA2.EnQue(a2);
    }
    __aicore__ inline void SplitB(const AscendC::LocalTensor<T>& b1, uint32_t k0, uint32_t kLen)
    {
        AscendC::LocalTensor<T> b2 = inQueueB2.AllocTensor<T>();
        uint32_t kb0 = k0 / C0, kfc = CeilDiv(kLen, C0);
        if (B_IS_TRANSPOSED) {
            // B^T in NZ already holds the ZN fractals in (k, n) order
            AscendC::LoadData(b2, b1[kb0 * Nf * FRAC], AscendC::LoadData2DParams(0, kfc * Nf, 1, 0, 0, false, 0));
        } else {
            // NZ -> ZN: transpose every 16 x 16 fractal
            uint32_t kf16 = CeilDiv(K, 16);
            for (uint32_t kb = 0; kb < kfc; ++kb) {
                AscendC::LoadData(b2[kb * Nf * FRAC], b1[(kb0 + kb) * FRAC],
                    AscendC::LoadData2DParams(0, Nf, kf16, 0, 0, !wrong, 0));
            }
        }
        inQueueB2.EnQue(b2);
    }
    __aicore__ inline void CopyOut()
    {
        AscendC::LocalTensor<float> c1 = outQueueCO1.DeQue<float>();
        // {nSize, mSize, srcStride, dstStride, reluEn, quantPre, deqScalar, ndNum, srcNdStride, dstNdStride, unitFlag}
        AscendC::FixpipeParamsV220 f32Params(N, M, Mf * 16, N, false, QuantMode_t::NoQuant, 0, 1, 0, 0, 0);
        AscendC::Fixpipe<float, float, AscendC::CFG_ROW_MAJOR>(cGm, c1, f32Params);
        AscendC::FixpipeParamsV220 f16Params(N, M, Mf * 16, N, false, QuantMode_t::F322F16, 0, 1, 0, 0, 0);
        AscendC::Fixpipe<half, float, AscendC::CFG_ROW_MAJOR>(chGm, c1, f16Params);
        outQueueCO1.FreeTensor(c1);
    }

    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::A1, 1> inQueueA1;
    AscendC::TQue<AscendC::TPosition::B1, 1> inQueueB1;
    AscendC::TQue<AscendC::TPosition::A2, 1> inQueueA2;
    AscendC::TQue<AscendC::TPosition::B2, 1> inQueueB2;
    AscendC::TQue<AscendC::TPosition::CO1, 1> outQueueCO1;
    AscendC::GlobalTensor<T> aGm, bGm;
    AscendC::GlobalTensor<float> cGm;
    AscendC::GlobalTensor<half> chGm;
    uint32_t M = 0, K = 0, N = 0, Mf = 0, Nf = 0, Kf = 0;
    bool wrong = false;
};

// float with both operands transposed on the way: A^T [K x M] and B [K x N] in GM. Each
// 16-row block of K goes GM -> L1 with its own Nd2Nz, so that the two 16 x 8 fractals of a
// 16 x 16 square are adjacent; LoadDataWithTranspose turns them into ZZ (A) / ZN (B) fractals.
class KernelMatmulF32Trans {
public:
    __aicore__ inline KernelMatmulF32Trans() {}
    __aicore__ inline void Init(GM_ADDR at, GM_ADDR b, GM_ADDR c, uint32_t m, uint32_t k, uint32_t n)
    {
        M = m; K = k; N = n;
        Mp = CeilDiv(M, 16) * 16; Np = CeilDiv(N, 16) * 16; Kp = CeilDiv(K, 16) * 16;
        atGm.SetGlobalBuffer((__gm__ float*)at, K * M);
        bGm.SetGlobalBuffer((__gm__ float*)b, K * N);
        cGm.SetGlobalBuffer((__gm__ float*)c, M * N);
        pipe.InitBuffer(a1Q, 1, Kp * Mp * sizeof(float));
        pipe.InitBuffer(b1Q, 1, Kp * Np * sizeof(float));
        pipe.InitBuffer(a2Q, 1, Mp * Kp * sizeof(float));
        pipe.InitBuffer(b2Q, 1, Kp * Np * sizeof(float));
        pipe.InitBuffer(c1Q, 1, Mp * Np * sizeof(float));
    }
    __aicore__ inline void Process()
    {
        AscendC::LocalTensor<float> a1 = a1Q.AllocTensor<float>();
        AscendC::LocalTensor<float> b1 = b1Q.AllocTensor<float>();
        for (uint32_t j = 0; j * 16 < K; ++j) {
            uint16_t rows = K - j * 16 < 16 ? K - j * 16 : 16;
            AscendC::DataCopy(a1[j * 16 * Mp], atGm[j * 16 * M], AscendC::Nd2NzParams(1, rows, M, 0, M, 16, 1, 0));
            AscendC::DataCopy(b1[j * 16 * Np], bGm[j * 16 * N], AscendC::Nd2NzParams(1, rows, N, 0, N, 16, 1, 0));
        }
        a1Q.EnQue(a1);
        b1Q.EnQue(b1);
        a1 = a1Q.DeQue<float>();
        b1 = b1Q.DeQue<float>();
        AscendC::LocalTensor<float> a2 = a2Q.AllocTensor<float>();
        AscendC::LocalTensor<float> b2 = b2Q.AllocTensor<float>();
        for (uint32_t i = 0; i < Mp / 16; ++i) {
            // {startIndex, repeatTimes, srcStride, dstGap, dstFracGap}: one square per 16 K rows,
            // its two halves become the K fractals 2j and 2j + 1 of M block i
            AscendC::LoadDataWithTranspose(a2[i * Kp * 16], a1[i * 256],
                AscendC::LoadData2dTransposeParams(0, Kp / 16, Mp / 16, 1, 0));
        }
        for (uint32_t j = 0; j < Kp / 16; ++j) {
            // squares of N block nb -> ZN fractals (2j, nb) and (2j + 1, nb)
            AscendC::LoadDataWithTranspose(b2[j * Np * 16], b1[j * 16 * Np],
                AscendC::LoadData2dTransposeParams(0, Np / 16, 1, 0, Np / 16 - 1));
        }
        a2Q.EnQue(a2);
        b2Q.EnQue(b2);
        a1Q.FreeTensor(a1);
        b1Q.FreeTensor(b1);
        a2 = a2Q.DeQue<float>();
        b2 = b2Q.DeQue<float>();
        AscendC::LocalTensor<float> c1 = c1Q.AllocTensor<float>();
        // m is padded to 16: with m == 1 the cube would switch to GEMV mode and read L0A as a
        // plain vector instead of ZZ fractals (rows >= M only produce C rows Fixpipe skips)
        AscendC::MmadParams mp(Mp, N, K, 0, false, true);
        mp.kDirectionAlign = true;  // A was transposed: its K fractals come in pairs
        AscendC::Mmad(c1, a2, b2, mp);
        a2Q.FreeTensor(a2);
        b2Q.FreeTensor(b2);
        c1Q.EnQue(c1);
        c1 = c1Q.DeQue<float>();
        AscendC::Fixpipe<float, float, AscendC::CFG_ROW_MAJOR>(cGm, c1,
            AscendC::FixpipeParamsV220(N, M, Mp, N, false, QuantMode_t::NoQuant, 0, 1, 0, 0, 0));
        c1Q.FreeTensor(c1);
    }

private:
    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::A1, 1> a1Q;
    AscendC::TQue<AscendC::TPosition::B1, 1> b1Q;
    AscendC::TQue<AscendC::TPosition::A2, 1> a2Q;
    AscendC::TQue<AscendC::TPosition::B2, 1> b2Q;
    AscendC::TQue<AscendC::TPosition::CO1, 1> c1Q;
    AscendC::GlobalTensor<float> atGm, bGm, cGm;
    uint32_t M = 0, K = 0, N = 0, Mp = 0, Np = 0, Kp = 0;
};

extern "C" __global__ __aicore__ void matmul_f32_trans(GM_ADDR at, GM_ADDR b, GM_ADDR c, uint32_t m, uint32_t k,
    uint32_t n)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    KernelMatmulF32Trans op;
    op.Init(at, b, c, m, k, n);
    op.Process();
}

static void RunF32Trans(uint32_t M, uint32_t K, uint32_t N)
{
    std::vector<float> at(K * M), b(K * N), c(M * N);
    TestRng rng(M + 7 * K + 13 * N);
    for (auto& v : at) v = static_cast<float>(rng.Next(-1, 1));
    for (auto& v : b) v = static_cast<float>(rng.Next(-1, 1));
    uint8_t *atDev, *bDev, *cDev;
    CHECK_ACL(aclrtMalloc((void**)&atDev, at.size() * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&bDev, b.size() * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&cDev, c.size() * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemcpy(atDev, at.size() * 4, at.data(), at.size() * 4, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_ACL(aclrtMemcpy(bDev, b.size() * 4, b.data(), b.size() * 4, ACL_MEMCPY_HOST_TO_DEVICE));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIC_MODE);
    ICPU_RUN_KF(matmul_f32_trans, 1, atDev, bDev, cDev, M, K, N);
#else
    matmul_f32_trans<<<1, nullptr, nullptr>>>(atDev, bDev, cDev, M, K, N);
#endif
    CHECK_ACL(aclrtMemcpy(c.data(), c.size() * 4, cDev, c.size() * 4, ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint32_t i = 0; i < M; ++i) {
        for (uint32_t j = 0; j < N; ++j) {
            double s = 0.0, mag = 0.0;
            for (uint32_t kk = 0; kk < K; ++kk) {
                double p = static_cast<double>(at[kk * M + i]) * b[kk * N + j];
                s += p;
                mag += std::fabs(p);
            }
            // the exact sum rounded once to float
            EXPECT(std::fabs(c[i * N + j] - s) <= 1.2e-7 * mag + 1e-30, "f32 A^T: C[%u][%u] = %.9g want %.9g", i, j,
                c[i * N + j], s);
        }
    }
    CHECK_ACL(aclrtFree(atDev));
    CHECK_ACL(aclrtFree(bDev));
    CHECK_ACL(aclrtFree(cDev));
    std::printf("matmul f32 (A^T, B via LoadDataWithTranspose) M=%u K=%u N=%u ok\n", M, K, N);
}

extern "C" __global__ __aicore__ void matmul_f16(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR ch, uint32_t m, uint32_t k,
    uint32_t n, uint32_t wrongLayout)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    KernelMatmul<half, false> op;
    op.Init(a, b, c, ch, m, k, n, wrongLayout);
    op.Process();
}

extern "C" __global__ __aicore__ void matmul_f32_bt(GM_ADDR a, GM_ADDR bt, GM_ADDR c, GM_ADDR ch, uint32_t m,
    uint32_t k, uint32_t n, uint32_t wrongLayout)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    KernelMatmul<float, true> op;
    op.Init(a, bt, c, ch, m, k, n, wrongLayout);
    op.Process();
}

// Runs one case and returns the largest relative error.
template <typename T>
static double RunCase(const char* name, uint32_t batch, uint32_t M, uint32_t K, uint32_t N, bool transposedB,
    bool wrong)
{
    std::vector<T> a(batch * M * K), b(batch * K * N);
    std::vector<double> ad(a.size()), bd(b.size());  // values after rounding to T
    TestRng rng(M * 10007 + K * 101 + N);
    for (size_t i = 0; i < a.size(); ++i) { a[i] = T(static_cast<float>(rng.Next(-1, 1))); ad[i] = (double)a[i]; }
    for (size_t i = 0; i < b.size(); ++i) { b[i] = T(static_cast<float>(rng.Next(-1, 1))); bd[i] = (double)b[i]; }
    size_t aBytes = a.size() * sizeof(T), bBytes = b.size() * sizeof(T);
    size_t cBytes = batch * M * N * sizeof(float), chBytes = batch * M * N * sizeof(half);
    uint8_t *aDev, *bDev, *cDev, *chDev;
    CHECK_ACL(aclrtMalloc((void**)&aDev, aBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&bDev, bBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&cDev, cBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&chDev, chBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemcpy(aDev, aBytes, a.data(), aBytes, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_ACL(aclrtMemcpy(bDev, bBytes, b.data(), bBytes, ACL_MEMCPY_HOST_TO_DEVICE));
    uint32_t w = wrong ? 1 : 0;
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIC_MODE);
    if (transposedB) {
        ICPU_RUN_KF(matmul_f32_bt, batch, aDev, bDev, cDev, chDev, M, K, N, w);
    } else {
        ICPU_RUN_KF(matmul_f16, batch, aDev, bDev, cDev, chDev, M, K, N, w);
    }
#else
    if (transposedB) {
        matmul_f32_bt<<<batch, nullptr, nullptr>>>(aDev, bDev, cDev, chDev, M, K, N, w);
    } else {
        matmul_f16<<<batch, nullptr, nullptr>>>(aDev, bDev, cDev, chDev, M, K, N, w);
    }
#endif
    std::vector<float> c(batch * M * N);
    std::vector<half> ch(batch * M * N);
    CHECK_ACL(aclrtMemcpy(c.data(), cBytes, cDev, cBytes, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK_ACL(aclrtMemcpy(ch.data(), chBytes, chDev, chBytes, ACL_MEMCPY_DEVICE_TO_HOST));
    double worst = 0.0;
    for (uint32_t bt = 0; bt < batch; ++bt) {
        for (uint32_t i = 0; i < M; ++i) {
            for (uint32_t j = 0; j < N; ++j) {
                double s = 0.0, mag = 0.0;
                for (uint32_t kk = 0; kk < K; ++kk) {
                    double av = ad[bt * M * K + i * K + kk];
                    // B^T is stored N x K for the float case
                    double bv = transposedB ? bd[bt * K * N + j * K + kk] : bd[bt * K * N + kk * N + j];
                    s += av * bv;
                    mag += std::fabs(av * bv);
                }
                size_t o = bt * M * N + i * N + j;
                double err = std::fabs(c[o] - s) / (mag + 1e-30);
                double errH = std::fabs(static_cast<double>(ch[o]) - s) / (mag + 1e-30);
                if (!wrong) {
                    // float C: the exact sum rounded once to float, plus a K-chunk accumulation
                    // rounding: 2 ulp of float relative to sum|a*b|
                    EXPECT(err <= 2.5e-7, "%s %ux%ux%u C[%u][%u][%u] = %.9g want %.9g", name, M, K, N, bt, i, j,
                        c[o], s);
                    // half C: one more rounding to half (2^-11 relative)
                    EXPECT(errH <= 5e-4 + 2.5e-7, "%s half C[%u][%u][%u] = %g want %g", name, bt, i, j,
                        (double)ch[o], s);
                }
                worst = std::max(worst, std::isnan(err) ? 1e30 : err);
            }
        }
    }
    CHECK_ACL(aclrtFree(aDev));
    CHECK_ACL(aclrtFree(bDev));
    CHECK_ACL(aclrtFree(cDev));
    CHECK_ACL(aclrtFree(chDev));
    std::printf("%s batch=%u M=%u K=%u N=%u%s: max relative error %.3g\n", name, batch, M, K, N,
        wrong ? " (wrong L0B layout)" : "", worst);
    return worst;
}

int main()
{
    CHECK_ACL(aclInit(nullptr));
    CHECK_ACL(aclrtSetDevice(0));
    RunCase<half>("matmul f16", 2, 33, 40, 19, false, false);
    RunCase<half>("matmul f16", 1, 17, 64, 129, false, false);
    RunCase<half>("matmul f16", 1, 16, 16, 16, false, false);
    RunCase<half>("matmul f16 gemv", 1, 1, 48, 40, false, false);
    RunCase<float>("matmul f32", 2, 17, 13, 33, true, false);
    RunCase<float>("matmul f32", 1, 64, 29, 7, true, false);
    RunF32Trans(17, 20, 33);
    RunF32Trans(32, 16, 16);
    RunF32Trans(1, 9, 5);
    double wrong = RunCase<half>("matmul f16", 1, 33, 40, 19, false, true);
    EXPECT(wrong > 0.5, "a kernel that skips the NZ -> ZN transpose must get wrong numbers (error %g)", wrong);
    CHECK_ACL(aclrtResetDevice(0));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
