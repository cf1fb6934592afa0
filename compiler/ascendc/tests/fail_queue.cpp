// Queue discipline: AllocTensor / EnQue / DeQue / FreeTensor must balance.
// argv[1]: ok | deque_empty | enque_depth | alloc_exhausted | leak_alloc | leak_enque |
//          leak_deque | double_free | use_after_free | use_while_enqueued
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

enum Mode { OK, DEQUE_EMPTY, ENQUE_DEPTH, ALLOC_EXHAUSTED, LEAK_ALLOC, LEAK_ENQUE, LEAK_DEQUE, DOUBLE_FREE,
    USE_AFTER_FREE, USE_WHILE_ENQUEUED, MODE_COUNT };

extern "C" __global__ __aicore__ void queue_kernel(GM_ADDR x, uint32_t mode)
{
    AscendC::TPipe pipe;
    AscendC::TQue<AscendC::TPosition::VECIN, 1> q;  // depth 1, double-buffered
    AscendC::GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer((__gm__ float*)x, 64);
    pipe.InitBuffer(q, 2, 64 * sizeof(float));
    // the usual pattern, balanced
    for (int i = 0; i < 3; ++i) {
        AscendC::LocalTensor<float> t = q.AllocTensor<float>();
        AscendC::DataCopy(t, xGm, 64);
        q.EnQue(t);
        AscendC::LocalTensor<float> u = q.DeQue<float>();
        AscendC::Adds(u, u, 1.0f, 64);
        q.FreeTensor(u);
    }
    if (mode == DEQUE_EMPTY) {
        AscendC::LocalTensor<float> u = q.DeQue<float>();
        q.FreeTensor(u);
    } else if (mode == ENQUE_DEPTH) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        AscendC::LocalTensor<float> b = q.AllocTensor<float>();
        q.EnQue(a);
        q.EnQue(b);
    } else if (mode == ALLOC_EXHAUSTED) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        AscendC::LocalTensor<float> b = q.AllocTensor<float>();
        AscendC::LocalTensor<float> c = q.AllocTensor<float>();
        q.FreeTensor(a);
        q.FreeTensor(b);
        q.FreeTensor(c);
    } else if (mode == LEAK_ALLOC) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        AscendC::Duplicate(a, 0.0f, 64);
    } else if (mode == LEAK_ENQUE) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        q.EnQue(a);
    } else if (mode == LEAK_DEQUE) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        q.EnQue(a);
        AscendC::LocalTensor<float> b = q.DeQue<float>();
        AscendC::Duplicate(b, 0.0f, 64);
    } else if (mode == DOUBLE_FREE) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        q.FreeTensor(a);
        q.FreeTensor(a);
    } else if (mode == USE_AFTER_FREE) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        q.FreeTensor(a);
        AscendC::Duplicate(a, 0.0f, 64);
    } else if (mode == USE_WHILE_ENQUEUED) {
        AscendC::LocalTensor<float> a = q.AllocTensor<float>();
        q.EnQue(a);
        AscendC::Duplicate(a, 0.0f, 64);
        AscendC::LocalTensor<float> b = q.DeQue<float>();
        q.FreeTensor(b);
    }
}

int main(int argc, char** argv)
{
    const char* names[] = {"ok", "deque_empty", "enque_depth", "alloc_exhausted", "leak_alloc", "leak_enque",
        "leak_deque", "double_free", "use_after_free", "use_while_enqueued"};
    uint32_t mode = MODE_COUNT;
    for (uint32_t i = 0; i < MODE_COUNT; ++i) {
        if (argc > 1 && std::strcmp(argv[1], names[i]) == 0) mode = i;
    }
    EXPECT(mode != MODE_COUNT, "unknown case");
    CHECK_ACL(aclInit(nullptr));
    uint8_t* x;
    CHECK_ACL(aclrtMalloc((void**)&x, 256, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemset(x, 256, 0, 256));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(queue_kernel, 2, x, mode);
#else
    queue_kernel<<<2, nullptr, nullptr>>>(x, mode);
#endif
    CHECK_ACL(aclrtFree(x));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
