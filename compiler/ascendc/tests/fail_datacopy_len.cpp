// DataCopy (count form) moves whole 32-byte blocks: a byte length that is not a multiple of 32
// must abort (the hardware would silently drop the tail).
// argv[1]: gm2ub | ub2gm | ok (8 floats = 32 bytes, passes)
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

extern "C" __global__ __aicore__ void copy_kernel(GM_ADDR x, GM_ADDR y, uint32_t inCount, uint32_t outCount)
{
    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::VECIN, 1> q;
    AscendC::GlobalTensor<float> xGm, yGm;
    xGm.SetGlobalBuffer((__gm__ float*)x, 64);
    yGm.SetGlobalBuffer((__gm__ float*)y, 64);
    pipe.InitBuffer(q, 1, 256);
    AscendC::LocalTensor<float> t = q.AllocTensor<float>();
    AscendC::DataCopy(t, xGm, inCount);
    q.EnQue(t);
    AscendC::LocalTensor<float> u = q.DeQue<float>();
    AscendC::DataCopy(yGm, u, outCount);
    q.FreeTensor(u);
}

int main(int argc, char** argv)
{
    EXPECT(argc > 1, "usage: fail_datacopy_len gm2ub|ub2gm|ok");
    uint32_t in = 8, out = 8;
    if (std::strcmp(argv[1], "gm2ub") == 0) in = 7;
    if (std::strcmp(argv[1], "ub2gm") == 0) out = 12;
    CHECK_ACL(aclInit(nullptr));
    uint8_t *x, *y;
    CHECK_ACL(aclrtMalloc((void**)&x, 256, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&y, 256, ACL_MEM_MALLOC_HUGE_FIRST));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(copy_kernel, 1, x, y, in, out);
#else
    copy_kernel<<<1, nullptr, nullptr>>>(x, y, in, out);
#endif
    CHECK_ACL(aclrtFree(x));
    CHECK_ACL(aclrtFree(y));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
