// Row reductions over a [rows, cols] float matrix, shaped like Tessera's reduction kernels:
// one row per program (rows spread over blocks with a stride loop), a loop over the row in
// chunks (DataCopyPad for the ragged chunk), an accumulator tile, then ReduceSum / ReduceMax
// (with index) and a scalar epilogue (mean = sum * 1/cols), results stored with DataCopyPad.
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

constexpr uint32_t CHUNK = 512;

class KernelRowReduce {
public:
    __aicore__ inline KernelRowReduce() {}
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR sum, GM_ADDR mean, GM_ADDR mx, GM_ADDR argmax, uint32_t rowCount,
        uint32_t colCount)
    {
        rows = rowCount;
        cols = colCount;
        xGm.SetGlobalBuffer((__gm__ float*)x, rows * cols);
        sumGm.SetGlobalBuffer((__gm__ float*)sum, rows);
        meanGm.SetGlobalBuffer((__gm__ float*)mean, rows);
        maxGm.SetGlobalBuffer((__gm__ float*)mx, rows);
        argGm.SetGlobalBuffer((__gm__ int32_t*)argmax, rows);
        pipe.InitBuffer(inQueue, 2, CHUNK * sizeof(float));
        pipe.InitBuffer(outQueue, 1, 4 * 8 * sizeof(float));
        pipe.InitBuffer(accSum, CHUNK * sizeof(float));
        pipe.InitBuffer(accMax, CHUNK * sizeof(float));
        pipe.InitBuffer(work, CHUNK * sizeof(float));
    }
    __aicore__ inline void Process()
    {
        for (uint32_t row = AscendC::GetBlockIdx(); row < rows; row += AscendC::GetBlockNum()) {
            Row(row);
        }
    }

private:
    __aicore__ inline void Row(uint32_t row)
    {
        AscendC::LocalTensor<float> s = accSum.Get<float>();
        AscendC::LocalTensor<float> m = accMax.Get<float>();
        uint32_t first = cols < CHUNK ? cols : CHUNK;
        AscendC::Duplicate(s, 0.0f, static_cast<int32_t>(first));
        AscendC::Duplicate(m, -3.0e38f, static_cast<int32_t>(first));
        AscendC::PipeBarrier<PIPE_V>();
        for (uint32_t c0 = 0; c0 < cols; c0 += CHUNK) {
            uint32_t len = cols - c0 < CHUNK ? cols - c0 : CHUNK;
            AscendC::LocalTensor<float> xl = inQueue.AllocTensor<float>();
            AscendC::DataCopyPad(xl, xGm[row * cols + c0],
                AscendC::DataCopyExtParams{1, static_cast<uint32_t>(len * sizeof(float)), 0, 0, 0},
                AscendC::DataCopyPadExtParams<float>{false, 0, 0, 0.0f});
            inQueue.EnQue(xl);
            AscendC::LocalTensor<float> xv = inQueue.DeQue<float>();
            AscendC::Add(s, s, xv, static_cast<int32_t>(len));
            AscendC::Max(m, m, xv, static_cast<int32_t>(len));
            AscendC::PipeBarrier<PIPE_V>();
            inQueue.FreeTensor(xv);
        }
        AscendC::LocalTensor<float> out = outQueue.AllocTensor<float>();
        AscendC::LocalTensor<float> w = work.Get<float>();
        AscendC::ReduceSum(out, s, w, static_cast<int32_t>(first));
        AscendC::ReduceMax(out[16], m, w, static_cast<int32_t>(first), true);
        AscendC::PipeBarrier<PIPE_V>();
        AscendC::Muls(out[8], out, 1.0f / static_cast<float>(cols), 1);
        outQueue.EnQue(out);
        AscendC::LocalTensor<float> res = outQueue.DeQue<float>();
        // the index of the max within the accumulator tile, read back bit-wise
        uint32_t lane = res.ReinterpretCast<uint32_t>().GetValue(17);
        AscendC::DataCopyExtParams one{1, sizeof(float), 0, 0, 0};
        AscendC::DataCopyPad(sumGm[row], res, one);
        AscendC::DataCopyPad(meanGm[row], res[8], one);
        AscendC::DataCopyPad(maxGm[row], res[16], one);
        argGm.SetValue(row, static_cast<int32_t>(lane));
        outQueue.FreeTensor(res);
    }

    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::VECIN, 1> inQueue;
    AscendC::TQue<AscendC::TPosition::VECOUT, 1> outQueue;
    AscendC::TBuf<AscendC::TPosition::VECCALC> accSum, accMax, work;
    AscendC::GlobalTensor<float> xGm, sumGm, meanGm, maxGm;
    AscendC::GlobalTensor<int32_t> argGm;
    uint32_t rows = 0;
    uint32_t cols = 0;
};

extern "C" __global__ __aicore__ void row_reduce(GM_ADDR x, GM_ADDR sum, GM_ADDR mean, GM_ADDR mx, GM_ADDR argmax,
    uint32_t rows, uint32_t cols)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    KernelRowReduce op;
    op.Init(x, sum, mean, mx, argmax, rows, cols);
    op.Process();
}

static void RunCase(uint32_t rows, uint32_t cols, uint32_t blockDim)
{
    size_t xBytes = static_cast<size_t>(rows) * cols * sizeof(float);
    size_t rBytes = rows * sizeof(float);
    std::vector<float> x(static_cast<size_t>(rows) * cols);
    TestRng rng(rows * 131 + cols);
    for (auto& v : x) v = static_cast<float>(rng.Next(-10.0, 10.0));
    uint8_t *xd, *sd, *md, *mxd, *ad;
    CHECK_ACL(aclrtMalloc((void**)&xd, xBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&sd, rBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&md, rBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&mxd, rBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&ad, rBytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemcpy(xd, xBytes, x.data(), xBytes, ACL_MEMCPY_HOST_TO_DEVICE));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(row_reduce, blockDim, xd, sd, md, mxd, ad, rows, cols);
#else
    row_reduce<<<blockDim, nullptr, nullptr>>>(xd, sd, md, mxd, ad, rows, cols);
#endif
    std::vector<float> sum(rows), mean(rows), mx(rows);
    std::vector<int32_t> arg(rows);
    CHECK_ACL(aclrtMemcpy(sum.data(), rBytes, sd, rBytes, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK_ACL(aclrtMemcpy(mean.data(), rBytes, md, rBytes, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK_ACL(aclrtMemcpy(mx.data(), rBytes, mxd, rBytes, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK_ACL(aclrtMemcpy(arg.data(), rBytes, ad, rBytes, ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint32_t r = 0; r < rows; ++r) {
        double s = 0.0, a = 0.0, best = -1e300;
        uint32_t bestLane = 0;
        std::vector<double> laneMax(CHUNK, -1e300);
        for (uint32_t c = 0; c < cols; ++c) {
            double v = x[static_cast<size_t>(r) * cols + c];
            s += v;
            a += std::fabs(v);
            if (v > laneMax[c % CHUNK]) laneMax[c % CHUNK] = v;
            best = v > best ? v : best;
        }
        for (uint32_t l = 0; l < CHUNK && l < cols; ++l) {
            if (laneMax[l] > laneMax[bestLane]) bestLane = l;
        }
        // float accumulation: at most cols/512 chunk adds + 9 tree levels + 8 repeat adds per
        // element, each with relative error 2^-24: 1e-5 * sum|x| bounds it for these sizes
        double tol = 1e-5 * a + 1e-6;
        EXPECT(std::fabs(sum[r] - s) <= tol, "rows=%u cols=%u: sum[%u]=%.9g want %.9g", rows, cols, r, sum[r], s);
        EXPECT(std::fabs(mean[r] - s / cols) <= tol / cols + 1e-6, "mean[%u]=%.9g want %.9g", r, mean[r], s / cols);
        EXPECT(mx[r] == static_cast<float>(best), "max[%u]=%.9g want %.9g", r, mx[r], best);
        EXPECT(arg[r] == static_cast<int32_t>(bestLane), "argmax lane[%u]=%d want %u", r, arg[r], bestLane);
    }
    CHECK_ACL(aclrtFree(xd));
    CHECK_ACL(aclrtFree(sd));
    CHECK_ACL(aclrtFree(md));
    CHECK_ACL(aclrtFree(mxd));
    CHECK_ACL(aclrtFree(ad));
    std::printf("row_reduce rows=%u cols=%u blockDim=%u ok\n", rows, cols, blockDim);
}

int main()
{
    CHECK_ACL(aclInit(nullptr));
    CHECK_ACL(aclrtSetDevice(0));
    RunCase(3, 1, 2);
    RunCase(5, 7, 8);
    RunCase(9, 127, 4);
    RunCase(4, 1000, 8);
    RunCase(2, 4097, 3);
    CHECK_ACL(aclrtResetDevice(0));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
