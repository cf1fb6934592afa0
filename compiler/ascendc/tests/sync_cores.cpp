// Cross-core synchronisation in the sequential CPU build: SyncAll between two phases of an AIV
// kernel (each block reads what the others wrote before the barrier), a MIX kernel where the
// AIC signals its two AIVs with CrossCoreSetFlag<2>, GetBlockIdx / GetSubBlockIdx /
// GetTaskRation per core type, and the failures: a wait that can never be satisfied
// (deadlock) and a kernel-type / KernelMode mismatch.
// argv[1]: ok | deadlock | kernel_mode
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

// phase 1: block b writes b+1 into slot b; SyncAll; phase 2: block b sums every slot
extern "C" __global__ __aicore__ void sync_all_kernel(GM_ADDR slots, GM_ADDR sums)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIV_1_0);
    AscendC::GlobalTensor<int32_t> s, out;
    int32_t n = static_cast<int32_t>(AscendC::GetBlockNum());
    s.SetGlobalBuffer((__gm__ int32_t*)slots, n);
    out.SetGlobalBuffer((__gm__ int32_t*)sums, n);
    int32_t b = static_cast<int32_t>(AscendC::GetBlockIdx());
    s.SetValue(b, b + 1);
    AscendC::SyncAll();
    int32_t total = 0;
    for (int32_t i = 0; i < n; ++i) total += s.GetValue(i);
    out.SetValue(b, total);
    // a second barrier with mode-0 cross-core flags (all AIVs), then every block reads every sum
    AscendC::CrossCoreSetFlag<0x0, PIPE_MTE3>(8);
    AscendC::CrossCoreWaitFlag(8);
    int32_t all = 0;
    for (int32_t i = 0; i < n; ++i) all += out.GetValue(i);
    s.SetValue(b, all);
}

// MIX: the AIC of group g writes 100 + g, then signals; each AIV waits and copies it with its
// own ids into info[(2g + sub) * 4 ..]
extern "C" __global__ __aicore__ void mix_kernel(GM_ADDR shared, GM_ADDR info, uint32_t deadlock)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    AscendC::GlobalTensor<int32_t> sh, inf;
    sh.SetGlobalBuffer((__gm__ int32_t*)shared, 64);
    inf.SetGlobalBuffer((__gm__ int32_t*)info, 256);
    if ASCEND_IS_AIC {
        int32_t g = static_cast<int32_t>(AscendC::GetBlockIdx());
        sh.SetValue(g, 100 + g);
        if (deadlock == 0) AscendC::CrossCoreSetFlag<0x2, PIPE_FIX>(3);
    }
    if ASCEND_IS_AIV {
        AscendC::CrossCoreWaitFlag(3);
        int32_t idx = static_cast<int32_t>(AscendC::GetBlockIdx());
        int32_t g = idx / 2;
        inf.SetValue(idx * 4 + 0, sh.GetValue(g));
        inf.SetValue(idx * 4 + 1, static_cast<int32_t>(AscendC::GetSubBlockIdx()));
        inf.SetValue(idx * 4 + 2, static_cast<int32_t>(AscendC::GetTaskRation()));
        inf.SetValue(idx * 4 + 3, static_cast<int32_t>(AscendC::GetBlockNum()));
    }
}

extern "C" __global__ __aicore__ void aiv_only_kernel()
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
}

int main(int argc, char** argv)
{
    EXPECT(argc > 1, "usage: sync_cores ok|deadlock|kernel_mode");
    CHECK_ACL(aclInit(nullptr));
    const uint32_t blocks = 5;
    uint8_t *slots, *sums, *shared, *info;
    CHECK_ACL(aclrtMalloc((void**)&slots, blocks * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&sums, blocks * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&shared, 64 * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&info, 256 * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    if (std::strcmp(argv[1], "kernel_mode") == 0) {
#ifdef ASCENDC_CPU_DEBUG
        AscendC::SetKernelMode(KernelMode::MIX_MODE);  // but the kernel is AIV_ONLY
        ICPU_RUN_KF(aiv_only_kernel, 1);
#endif
    }
    uint32_t deadlock = std::strcmp(argv[1], "deadlock") == 0 ? 1 : 0;
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(sync_all_kernel, blocks, slots, sums);
    AscendC::SetKernelMode(KernelMode::MIX_MODE);
    ICPU_RUN_KF(mix_kernel, 3, shared, info, deadlock);
#else
    sync_all_kernel<<<blocks, nullptr, nullptr>>>(slots, sums);
    mix_kernel<<<3, nullptr, nullptr>>>(shared, info, deadlock);
#endif
    int32_t got[blocks];
    CHECK_ACL(aclrtMemcpy(got, sizeof(got), sums, sizeof(got), ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint32_t b = 0; b < blocks; ++b) EXPECT(got[b] == 15, "SyncAll: block %u saw sum %d, want 15", b, got[b]);
    CHECK_ACL(aclrtMemcpy(got, sizeof(got), slots, sizeof(got), ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint32_t b = 0; b < blocks; ++b) EXPECT(got[b] == 75, "mode-0 flags: block %u saw %d, want 75", b, got[b]);
    int32_t inf[24];
    CHECK_ACL(aclrtMemcpy(inf, sizeof(inf), info, sizeof(inf), ACL_MEMCPY_DEVICE_TO_HOST));
    for (int32_t idx = 0; idx < 6; ++idx) {
        EXPECT(inf[idx * 4] == 100 + idx / 2, "AIV %d read %d from its AIC", idx, inf[idx * 4]);
        EXPECT(inf[idx * 4 + 1] == idx % 2, "AIV %d GetSubBlockIdx %d", idx, inf[idx * 4 + 1]);
        EXPECT(inf[idx * 4 + 2] == 2, "AIV %d GetTaskRation %d", idx, inf[idx * 4 + 2]);
        EXPECT(inf[idx * 4 + 3] == 3, "AIV %d GetBlockNum %d", idx, inf[idx * 4 + 3]);
    }
    CHECK_ACL(aclrtFree(slots));
    CHECK_ACL(aclrtFree(sums));
    CHECK_ACL(aclrtFree(shared));
    CHECK_ACL(aclrtFree(info));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
