// bfloat16_t is storage-only on the Atlas A2 vector unit: movement, Duplicate, Brcb and Cast
// are fine, arithmetic must abort.
// argv[1]: ok | add | exp | reduce
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

extern "C" __global__ __aicore__ void bf16_kernel(uint32_t mode)
{
    AscendC::TPipe pipe;
    AscendC::TBuf<AscendC::TPosition::VECCALC> b16, f32;
    pipe.InitBuffer(b16, 128 * sizeof(bfloat16_t));
    pipe.InitBuffer(f32, 128 * sizeof(float));
    AscendC::LocalTensor<bfloat16_t> b = b16.Get<bfloat16_t>();
    AscendC::LocalTensor<float> f = f32.Get<float>();
    AscendC::Duplicate(b, bfloat16_t(1.5f), 128);
    AscendC::Cast(f, b, AscendC::RoundMode::CAST_NONE, 128);
    AscendC::Adds(f, f, 1.0f, 128);
    AscendC::Cast(b, f, AscendC::RoundMode::CAST_RINT, 128);
    if (mode == 1) AscendC::Add(b, b, b, 128);
    if (mode == 2) AscendC::Exp(b, b, 128);
    if (mode == 3) AscendC::ReduceSum(b, b, b, 128);
}

int main(int argc, char** argv)
{
    const char* names[] = {"ok", "add", "exp", "reduce"};
    uint32_t mode = 99;
    for (uint32_t i = 0; i < 4; ++i) {
        if (argc > 1 && std::strcmp(argv[1], names[i]) == 0) mode = i;
    }
    EXPECT(mode != 99, "unknown case");
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(bf16_kernel, 1, mode);
#else
    bf16_kernel<<<1, nullptr, nullptr>>>(mode);
#endif
    std::printf("PASS\n");
    return 0;
}
