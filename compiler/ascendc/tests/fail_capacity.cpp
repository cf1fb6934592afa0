// Local buffer capacity: TPipe::InitBuffer beyond UB (184 KiB usable: 192 KiB minus the 8 KiB
// API scratch), L1 (512 KiB), L0A / L0B (64 KiB), L0C (128 KiB) must abort.
// argv[1]: ub_ok (exactly 184 KiB, passes) | ub | l1 | l0a | l0b | l0c
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

extern "C" __global__ __aicore__ void capacity_kernel(GM_ADDR x, uint32_t which)
{
    (void)x;
    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::VECIN, 1> qIn;
    AscendC::TQue<AscendC::TPosition::VECOUT, 1> qOut;
    AscendC::TBuf<AscendC::TPosition::VECCALC> tmp;
    AscendC::TQue<AscendC::TPosition::A1, 1> qA1;
    AscendC::TQue<AscendC::TPosition::A2, 1> qA2;
    AscendC::TQue<AscendC::TPosition::B2, 1> qB2;
    AscendC::TQue<AscendC::TPosition::CO1, 1> qCO1;
    switch (which) {
        case 0:  // 2 x 64 KiB + 1 x 32 KiB + 24 KiB = 184 KiB: fits
            pipe.InitBuffer(qIn, 2, 64 * 1024);
            pipe.InitBuffer(qOut, 1, 32 * 1024);
            pipe.InitBuffer(tmp, 24 * 1024);
            break;
        case 1:  // 184 KiB + 32 bytes: reaches into the reserved top 8 KiB
            pipe.InitBuffer(qIn, 2, 64 * 1024);
            pipe.InitBuffer(qOut, 1, 32 * 1024);
            pipe.InitBuffer(tmp, 24 * 1024 + 1);
            break;
        case 2: pipe.InitBuffer(qA1, 2, 300 * 1024); break;
        case 3: pipe.InitBuffer(qA2, 1, 64 * 1024 + 512); break;
        case 4: pipe.InitBuffer(qB2, 2, 40 * 1024); break;
        default: pipe.InitBuffer(qCO1, 2, 65 * 1024); break;
    }
}

int main(int argc, char** argv)
{
    const char* cases[] = {"ub_ok", "ub", "l1", "l0a", "l0b", "l0c"};
    uint32_t which = 99;
    for (uint32_t i = 0; i < 6; ++i) {
        if (argc > 1 && std::strcmp(argv[1], cases[i]) == 0) which = i;
    }
    EXPECT(which != 99, "usage: fail_capacity ub_ok|ub|l1|l0a|l0b|l0c");
    CHECK_ACL(aclInit(nullptr));
    CHECK_ACL(aclrtSetDevice(0));
    uint8_t* x;
    CHECK_ACL(aclrtMalloc((void**)&x, 64, ACL_MEM_MALLOC_HUGE_FIRST));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(which <= 1 ? KernelMode::AIV_MODE : KernelMode::AIC_MODE);
    ICPU_RUN_KF(capacity_kernel, 1, x, which);
#else
    capacity_kernel<<<1, nullptr, nullptr>>>(x, which);
#endif
    CHECK_ACL(aclrtFree(x));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
