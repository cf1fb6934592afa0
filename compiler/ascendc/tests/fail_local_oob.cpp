// Out-of-bounds LocalTensor access: scalar GetValue/SetValue, vector ranges, operator[] and
// sub-views beyond the buffer.
// argv[1]: ok | getvalue | setvalue | vector | index | tbuf_get | scalar_l1
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

extern "C" __global__ __aicore__ void local_oob_kernel(uint32_t mode)
{
    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::VECOUT, 1> q;
    AscendC::TBuf<AscendC::TPosition::VECCALC> buf;
    pipe.InitBuffer(q, 1, 64 * sizeof(float));
    pipe.InitBuffer(buf, 128 * sizeof(float));
    AscendC::LocalTensor<float> t = q.AllocTensor<float>();  // 64 floats
    AscendC::LocalTensor<float> w = buf.Get<float>();        // 128 floats
    AscendC::Duplicate(t, 1.0f, 64);
    float v = t.GetValue(63);
    t.SetValue(0, v);
    if (mode == 1) v = t.GetValue(64);
    if (mode == 2) t.SetValue(100, v);
    if (mode == 3) AscendC::Add(w, t, t, 72);
    if (mode == 4) AscendC::Add(t[56], t[56], t[56], 16);
    if (mode == 5) w = buf.Get<float>(129);
    q.FreeTensor(t);
    (void)v;
}

extern "C" __global__ __aicore__ void scalar_l1_kernel()
{
    AscendC::TPipe pipe;
    AscendC::TBuf<AscendC::TPosition::A1> l1;
    pipe.InitBuffer(l1, 1024);
    AscendC::LocalTensor<half> a = l1.Get<half>();
    a.SetValue(0, half(1.0f));
}

int main(int argc, char** argv)
{
    const char* names[] = {"ok", "getvalue", "setvalue", "vector", "index", "tbuf_get", "scalar_l1"};
    uint32_t mode = 99;
    for (uint32_t i = 0; i < 7; ++i) {
        if (argc > 1 && std::strcmp(argv[1], names[i]) == 0) mode = i;
    }
    EXPECT(mode != 99, "unknown case");
#ifdef ASCENDC_CPU_DEBUG
    if (mode == 6) {
        AscendC::SetKernelMode(KernelMode::AIC_MODE);
        ICPU_RUN_KF(scalar_l1_kernel, 1);
    } else {
        AscendC::SetKernelMode(KernelMode::AIV_MODE);
        ICPU_RUN_KF(local_oob_kernel, 1, mode);
    }
#else
    if (mode == 6) scalar_l1_kernel<<<1, nullptr, nullptr>>>();
    else local_oob_kernel<<<1, nullptr, nullptr>>>(mode);
#endif
    std::printf("PASS\n");
    return 0;
}
