// At most 8 queue buffers per TPosition (each holds one of the 8 hardware event ids).
// argv[1]: ok (8 VECIN buffers) | vecin (9 VECIN buffers)
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

extern "C" __global__ __aicore__ void positions_kernel(uint32_t extra)
{
    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::VECIN, 1> q0, q1, q2, q3;
    AscendC::TQue<AscendC::TPosition::VECOUT, 1> out;
    pipe.InitBuffer(q0, 2, 1024);
    pipe.InitBuffer(q1, 2, 1024);
    pipe.InitBuffer(q2, 2, 1024);
    pipe.InitBuffer(q3, 1 + extra, 1024);
    pipe.InitBuffer(out, 2, 1024);
}

int main(int argc, char** argv)
{
    EXPECT(argc > 1, "usage: fail_queue_positions ok|vecin");
    uint32_t extra = std::strcmp(argv[1], "vecin") == 0 ? 2 : 1;
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(positions_kernel, 1, extra);
#else
    positions_kernel<<<1, nullptr, nullptr>>>(extra);
#endif
    std::printf("PASS\n");
    return 0;
}
