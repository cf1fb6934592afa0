// Elementwise z = x + y written like a CANN kernel-launch sample: TQue double buffering,
// 32-byte-aligned tiles with DataCopy, the ragged tail with DataCopyPad, 8 AIV blocks.
// Checked bit-exactly for float and half (half: one rounding to nearest even per add).
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

constexpr int32_t BUFFER_NUM = 2;
constexpr uint32_t TILE_LENGTH = 256;

template <typename T>
class KernelAdd {
public:
    __aicore__ inline KernelAdd() {}
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t totalLength)
    {
        // every block but the last takes a 32-byte multiple of elements
        constexpr uint32_t align = 32 / sizeof(T);
        uint32_t blockNum = AscendC::GetBlockNum();
        uint32_t perBlock = (totalLength + blockNum - 1) / blockNum;
        perBlock = (perBlock + align - 1) / align * align;
        uint32_t start = AscendC::GetBlockIdx() * perBlock;
        this->blockLength = start >= totalLength ? 0 : (totalLength - start < perBlock ? totalLength - start : perBlock);
        xGm.SetGlobalBuffer((__gm__ T*)x + start, this->blockLength);
        yGm.SetGlobalBuffer((__gm__ T*)y + start, this->blockLength);
        zGm.SetGlobalBuffer((__gm__ T*)z + start, this->blockLength);
        pipe.InitBuffer(inQueueX, BUFFER_NUM, TILE_LENGTH * sizeof(T));
        pipe.InitBuffer(inQueueY, BUFFER_NUM, TILE_LENGTH * sizeof(T));
        pipe.InitBuffer(outQueueZ, BUFFER_NUM, TILE_LENGTH * sizeof(T));
    }
    __aicore__ inline void Process()
    {
        uint32_t loopCount = (this->blockLength + TILE_LENGTH - 1) / TILE_LENGTH;
        for (uint32_t i = 0; i < loopCount; i++) {
            uint32_t len = this->blockLength - i * TILE_LENGTH;
            len = len < TILE_LENGTH ? len : TILE_LENGTH;
            CopyIn(i, len);
            Compute(len);
            CopyOut(i, len);
        }
    }

private:
    __aicore__ inline void CopyIn(uint32_t progress, uint32_t len)
    {
        AscendC::LocalTensor<T> xLocal = inQueueX.template AllocTensor<T>();
        AscendC::LocalTensor<T> yLocal = inQueueY.template AllocTensor<T>();
        if (len == TILE_LENGTH) {
            AscendC::DataCopy(xLocal, xGm[progress * TILE_LENGTH], TILE_LENGTH);
            AscendC::DataCopy(yLocal, yGm[progress * TILE_LENGTH], TILE_LENGTH);
        } else {
            AscendC::DataCopyExtParams copyParams{1, static_cast<uint32_t>(len * sizeof(T)), 0, 0, 0};
            AscendC::DataCopyPadExtParams<T> padParams{false, 0, 0, 0};
            AscendC::DataCopyPad(xLocal, xGm[progress * TILE_LENGTH], copyParams, padParams);
            AscendC::DataCopyPad(yLocal, yGm[progress * TILE_LENGTH], copyParams, padParams);
        }
        inQueueX.EnQue(xLocal);
        inQueueY.EnQue(yLocal);
    }
    __aicore__ inline void Compute(uint32_t len)
    {
        AscendC::LocalTensor<T> xLocal = inQueueX.template DeQue<T>();
        AscendC::LocalTensor<T> yLocal = inQueueY.template DeQue<T>();
        AscendC::LocalTensor<T> zLocal = outQueueZ.template AllocTensor<T>();
        AscendC::Add(zLocal, xLocal, yLocal, static_cast<int32_t>(len));
        outQueueZ.template EnQue<T>(zLocal);
        inQueueX.FreeTensor(xLocal);
        inQueueY.FreeTensor(yLocal);
    }
    __aicore__ inline void CopyOut(uint32_t progress, uint32_t len)
    {
        AscendC::LocalTensor<T> zLocal = outQueueZ.template DeQue<T>();
        if (len == TILE_LENGTH) {
            AscendC::DataCopy(zGm[progress * TILE_LENGTH], zLocal, TILE_LENGTH);
        } else {
            AscendC::DataCopyExtParams copyParams{1, static_cast<uint32_t>(len * sizeof(T)), 0, 0, 0};
            AscendC::DataCopyPad(zGm[progress * TILE_LENGTH], zLocal, copyParams);
        }
        outQueueZ.FreeTensor(zLocal);
    }

    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::VECIN, BUFFER_NUM> inQueueX, inQueueY;
    AscendC::TQue<AscendC::TPosition::VECOUT, BUFFER_NUM> outQueueZ;
    AscendC::GlobalTensor<T> xGm;
    AscendC::GlobalTensor<T> yGm;
    AscendC::GlobalTensor<T> zGm;
    uint32_t blockLength = 0;
};

extern "C" __global__ __aicore__ void add_custom_f32(GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t totalLength)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    KernelAdd<float> op;
    op.Init(x, y, z, totalLength);
    op.Process();
}

extern "C" __global__ __aicore__ void add_custom_f16(GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t totalLength)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    KernelAdd<half> op;
    op.Init(x, y, z, totalLength);
    op.Process();
}

template <typename T, typename Launch>
static void RunCase(const char* name, uint32_t n, uint32_t blockDim, Launch launch)
{
    size_t bytes = n * sizeof(T);
    aclrtStream stream = nullptr;
    CHECK_ACL(aclrtCreateStream(&stream));
    T *xHost, *yHost, *zHost;
    uint8_t *xDevice, *yDevice, *zDevice;
    CHECK_ACL(aclrtMallocHost((void**)&xHost, bytes));
    CHECK_ACL(aclrtMallocHost((void**)&yHost, bytes));
    CHECK_ACL(aclrtMallocHost((void**)&zHost, bytes));
    TestRng rng(n);
    for (uint32_t i = 0; i < n; ++i) {
        xHost[i] = T(static_cast<float>(rng.Next(-100.0, 100.0)));
        yHost[i] = T(static_cast<float>(rng.Next(-100.0, 100.0)));
    }
    CHECK_ACL(aclrtMalloc((void**)&xDevice, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&yDevice, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&zDevice, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemcpy(xDevice, bytes, xHost, bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_ACL(aclrtMemcpy(yDevice, bytes, yHost, bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    launch(blockDim, stream, xDevice, yDevice, zDevice, n);
    CHECK_ACL(aclrtSynchronizeStream(stream));
    CHECK_ACL(aclrtMemcpy(zHost, bytes, zDevice, bytes, ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint32_t i = 0; i < n; ++i) {
        // reference: the exact sum rounded once to T
        T want = T(static_cast<double>(xHost[i]) + static_cast<double>(yHost[i]));
        EXPECT(std::memcmp(&want, &zHost[i], sizeof(T)) == 0, "%s n=%u: z[%u] = %g, want %g", name, n, i,
            (double)zHost[i], (double)want);
    }
    CHECK_ACL(aclrtFree(xDevice));
    CHECK_ACL(aclrtFree(yDevice));
    CHECK_ACL(aclrtFree(zDevice));
    CHECK_ACL(aclrtFreeHost(xHost));
    CHECK_ACL(aclrtFreeHost(yHost));
    CHECK_ACL(aclrtFreeHost(zHost));
    CHECK_ACL(aclrtDestroyStream(stream));
    std::printf("%s n=%u blockDim=%u ok\n", name, n, blockDim);
}

static void LaunchF32(uint32_t blockDim, aclrtStream stream, uint8_t* x, uint8_t* y, uint8_t* z, uint32_t n)
{
#ifdef ASCENDC_CPU_DEBUG
    (void)stream;
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(add_custom_f32, blockDim, x, y, z, n);
#else
    add_custom_f32<<<blockDim, nullptr, stream>>>(x, y, z, n);
#endif
}

static void LaunchF16(uint32_t blockDim, aclrtStream stream, uint8_t* x, uint8_t* y, uint8_t* z, uint32_t n)
{
#ifdef ASCENDC_CPU_DEBUG
    (void)stream;
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(add_custom_f16, blockDim, x, y, z, n);
#else
    add_custom_f16<<<blockDim, nullptr, stream>>>(x, y, z, n);
#endif
}

int main()
{
    CHECK_ACL(aclInit(nullptr));
    CHECK_ACL(aclrtSetDevice(0));
    const uint32_t sizes[] = {1, 7, 127, 1000, 4097, 8 * 256};
    for (uint32_t n : sizes) {
        RunCase<float>("add f32", n, 8, LaunchF32);
        RunCase<half>("add f16", n, 8, LaunchF16);
    }
    RunCase<float>("add f32", 1000, 1, LaunchF32);
    CHECK_ACL(aclrtResetDevice(0));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
