// Out-of-bounds GlobalTensor access: beyond the size given to SetGlobalBuffer, beyond the
// aclrtMalloc / GmAlloc allocation, or on memory that is not device memory at all.
// argv[1]: ok | sized | alloc | scalar | host | gmalloc
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

extern "C" __global__ __aicore__ void global_oob_kernel(GM_ADDR x, uint32_t mode)
{
    AscendC::TPipe pipe;
    AscendC::TBuf<AscendC::TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 256 * sizeof(float));
    AscendC::LocalTensor<float> t = buf.Get<float>();
    AscendC::GlobalTensor<float> sized, unsized;
    sized.SetGlobalBuffer((__gm__ float*)x, 64);  // the allocation holds 128 floats
    unsized.SetGlobalBuffer((__gm__ float*)x);
    AscendC::DataCopy(t, sized, 64);
    AscendC::DataCopy(t, unsized[64], 64);
    if (mode == 1) AscendC::DataCopy(t, sized[32], 64);     // elements [32, 96) of 64
    if (mode == 2) AscendC::DataCopy(t, unsized[120], 16);  // bytes [480, 544) of 512
    if (mode == 3) (void)sized.GetValue(64);
    if (mode == 4 || mode == 5) AscendC::DataCopy(unsized, t, 8);
}

int main(int argc, char** argv)
{
    const char* names[] = {"ok", "sized", "alloc", "scalar", "host", "gmalloc"};
    uint32_t mode = 99;
    for (uint32_t i = 0; i < 6; ++i) {
        if (argc > 1 && std::strcmp(argv[1], names[i]) == 0) mode = i;
    }
    EXPECT(mode != 99, "unknown case");
    CHECK_ACL(aclInit(nullptr));
    uint8_t* x;
    CHECK_ACL(aclrtMalloc((void**)&x, 128 * sizeof(float), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemset(x, 512, 0, 512));
    static float hostBuf[128];
    uint8_t* arg = x;
    if (mode == 4) arg = reinterpret_cast<uint8_t*>(hostBuf);
#ifdef ASCENDC_CPU_DEBUG
    if (mode == 5) {
        // GmAlloc'd memory is device memory too, but 16 bytes are too few for 8 floats
        arg = static_cast<uint8_t*>(AscendC::GmAlloc(16));
    }
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(global_oob_kernel, 1, arg, mode);
#else
    global_oob_kernel<<<1, nullptr, nullptr>>>(arg, mode);
#endif
    CHECK_ACL(aclrtFree(x));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
