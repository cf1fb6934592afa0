// Vector operands and DataCopy UB addresses must be 32-byte aligned.
// argv[1]: vector (Add on x[3]: 12 bytes in) | copy (DataCopy into x[4]: 16 bytes in) | ok
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

extern "C" __global__ __aicore__ void unaligned_kernel(GM_ADDR x, uint32_t mode)
{
    AscendC::TPipe pipe;
    AscendC::TBuf<AscendC::TPosition::VECCALC> buf;
    AscendC::GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer((__gm__ float*)x, 64);
    pipe.InitBuffer(buf, 64 * sizeof(float));
    AscendC::LocalTensor<float> t = buf.Get<float>();
    AscendC::Duplicate(t, 1.0f, 64);
    if (mode == 1) AscendC::Add(t[3], t[16], t[24], 8);
    else if (mode == 2) AscendC::DataCopy(t[4], xGm, 8);
    else AscendC::Add(t[8], t[16], t[24], 8);
}

int main(int argc, char** argv)
{
    EXPECT(argc > 1, "usage: fail_unaligned vector|copy|ok");
    uint32_t mode = std::strcmp(argv[1], "vector") == 0 ? 1 : (std::strcmp(argv[1], "copy") == 0 ? 2 : 0);
    CHECK_ACL(aclInit(nullptr));
    uint8_t* x;
    CHECK_ACL(aclrtMalloc((void**)&x, 256, ACL_MEM_MALLOC_HUGE_FIRST));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(unaligned_kernel, 1, x, mode);
#else
    unaligned_kernel<<<1, nullptr, nullptr>>>(x, mode);
#endif
    CHECK_ACL(aclrtFree(x));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
