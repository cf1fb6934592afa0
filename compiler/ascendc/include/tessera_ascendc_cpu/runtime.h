// Tessera CPU build of the Ascend C API subset: runtime.
//
// - GM: every device allocation (AscendC::GmAlloc, aclrtMalloc) is recorded, so that each
//   kernel access to global memory is range-checked against its allocation.
// - Cores: ICPU_RUN_KF runs one kernel instance per core (per KernelMode), each with its
//   own Unified Buffer / L1 / L0A / L0B / L0C arenas. Instances run one at a time, in
//   order of their index; each runs in its own thread only so that an instance blocked in
//   SyncAll / CrossCoreWaitFlag can hand over to the next one (cooperative scheduling, no
//   two instances ever run at the same time). A wait that can never be satisfied is
//   reported as a deadlock.
// - At the end of every instance, queue buffers still allocated or enqueued are errors.
#ifndef TESSERA_ASCENDC_CPU_RUNTIME_H
#define TESSERA_ASCENDC_CPU_RUNTIME_H

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

// Per-instance globals with the names CANN's CPU-debug framework uses.
inline thread_local int32_t g_coreType = AscendC::MIX;
inline thread_local int64_t block_idx = 0;
inline thread_local int64_t block_num = 0;
inline thread_local int32_t sub_block_idx = 0;
inline thread_local int32_t g_taskRation = 1;

#define ASCEND_IS_AIV (g_coreType == AscendC::AIV)
#define ASCEND_IS_AIC (g_coreType == AscendC::AIC)
#define ASCEND_IS_NOT_AIV (g_coreType != AscendC::AIV)
#define ASCEND_IS_NOT_AIC (g_coreType != AscendC::AIC)

namespace tessera_ascendc_cpu {

// ---------------------------------------------------------------------------------------
// Global memory registry.
// ---------------------------------------------------------------------------------------

/// Who made an allocation.
enum class AllocKind { kGmAlloc, kAclDevice, kAclHost };

/// One recorded allocation.
struct Allocation {
    size_t size;
    AllocKind kind;
};

/// All live allocations, keyed by start address.
struct MemRegistry {
    std::mutex mu;
    std::map<uintptr_t, Allocation> allocs;
};

inline MemRegistry& Registry()
{
    static MemRegistry r;
    return r;
}

inline const char* AllocKindName(AllocKind k)
{
    switch (k) {
        case AllocKind::kGmAlloc: return "AscendC::GmAlloc";
        case AllocKind::kAclDevice: return "aclrtMalloc";
        default: return "aclrtMallocHost";
    }
}

/// Allocates 512-byte aligned memory, fills it and records it.
inline void* RegisteredAlloc(size_t size, AllocKind kind, int fill)
{
    size_t rounded = ((size == 0 ? 1 : size) + 511u) / 512u * 512u;
    void* p = std::aligned_alloc(512, rounded);
    if (p == nullptr) return nullptr;
    std::memset(p, fill, rounded);
    MemRegistry& r = Registry();
    std::lock_guard<std::mutex> lk(r.mu);
    r.allocs[reinterpret_cast<uintptr_t>(p)] = Allocation{size, kind};
    return p;
}

/// Frees a recorded allocation; returns false if p is not a live allocation of that family.
inline bool RegisteredFree(void* p, bool device)
{
    MemRegistry& r = Registry();
    {
        std::lock_guard<std::mutex> lk(r.mu);
        auto it = r.allocs.find(reinterpret_cast<uintptr_t>(p));
        if (it == r.allocs.end()) return false;
        bool isDevice = it->second.kind != AllocKind::kAclHost;
        if (isDevice != device) return false;
        r.allocs.erase(it);
    }
    std::free(p);
    return true;
}

/// Finds the allocation containing p. Returns false if none.
inline bool FindAllocation(const void* p, uintptr_t* base, Allocation* a)
{
    MemRegistry& r = Registry();
    std::lock_guard<std::mutex> lk(r.mu);
    uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    auto it = r.allocs.upper_bound(addr);
    if (it == r.allocs.begin()) return false;
    --it;
    // the byte just past the end still "belongs" for an empty range
    if (addr > it->first + it->second.size) return false;
    *base = it->first;
    *a = it->second;
    return true;
}

/// Checks that [p, p+bytes) lies in one device allocation, else aborts.
inline void CheckDeviceRange(const void* p, uint64_t bytes, const std::string& what)
{
    if (bytes == 0) return;
    uintptr_t base = 0;
    Allocation a{0, AllocKind::kGmAlloc};
    if (!FindAllocation(p, &base, &a) || reinterpret_cast<uintptr_t>(p) == base + a.size) {
        Fail(Str(what, ": GM address ", p, " (", bytes,
            " bytes) is not inside any AscendC::GmAlloc / aclrtMalloc allocation"));
    }
    if (a.kind == AllocKind::kAclHost) {
        Fail(Str(what, ": address ", p, " is host memory from aclrtMallocHost; kernels can only access device memory"));
    }
    uint64_t off = reinterpret_cast<uintptr_t>(p) - base;
    if (off + bytes > a.size) {
        Fail(Str(what, ": GM access [byte ", off, ", byte ", off + bytes, ") runs past the end of its ",
            AllocKindName(a.kind), " allocation of ", a.size, " bytes by ", off + bytes - a.size, " bytes"));
    }
}

// ---------------------------------------------------------------------------------------
// Per-core state.
// ---------------------------------------------------------------------------------------

/// One buffer carved by TPipe::InitBuffer (a queue buffer or a TBuf).
struct BufferRec {
    AscendC::Hardware hw;
    AscendC::TPosition pos;
    uint32_t off;
    uint32_t len;
    AscendC::TBufState state;
    uint32_t gen;
    int queue;   // -1 for TBuf
    int index;   // index within its queue
    bool alive;  // false after TPipe::Destroy
};

/// One TQue / TQueBind.
struct QueueRec {
    std::string name;
    AscendC::TPosition pos;
    int32_t depth;
    std::vector<int> bufs;
    std::deque<int> fifo;
    size_t cursor;
};

/// A kernel instance (one AIC or one AIV core).
struct CoreContext {
    int instance = 0;
    int instanceCount = 0;
    int64_t rawBlockIdx = 0;
    int64_t blockNum = 0;
    int32_t subBlockIdx = 0;
    int32_t coreType = AscendC::AIV;
    int32_t taskRation = 1;
    int group = 0;
    std::string kernelName;
    uint8_t* arena[static_cast<int>(AscendC::Hardware::MAX)] = {};
    std::vector<BufferRec> bufs;
    std::vector<QueueRec> queues;
    int pipes = 0;

    CoreContext() = default;
    CoreContext(const CoreContext&) = delete;
    CoreContext& operator=(const CoreContext&) = delete;
    ~CoreContext()
    {
        for (auto* p : arena) std::free(p);
    }

    /// The bytes of a physical buffer, allocated on first use and filled with 0xFF (a NaN
    /// pattern for every float type), so that reads of never-written memory show up.
    uint8_t* Arena(AscendC::Hardware hw)
    {
        int i = static_cast<int>(hw);
        if (arena[i] == nullptr) {
            uint32_t size = PhysicalSize(hw);
            arena[i] = static_cast<uint8_t*>(std::aligned_alloc(4096, (size + 4095u) / 4096u * 4096u));
            if (arena[i] == nullptr) Fail("out of host memory for a local buffer");
            std::memset(arena[i], 0xFF, size);
        }
        return arena[i];
    }

    int64_t BlockIdx() const
    {
        return coreType == AscendC::AIV ? rawBlockIdx * taskRation + subBlockIdx : rawBlockIdx;
    }

    std::string Describe() const
    {
        return Str("core ", instance, " of ", instanceCount, " (", coreType == AscendC::AIC ? "AIC" : "AIV",
            ", GetBlockIdx()=", BlockIdx(), ")");
    }
};

/// The core running on this thread (null outside ICPU_RUN_KF).
inline thread_local CoreContext* tls_core = nullptr;

/// The running core; aborts outside a kernel run.
inline CoreContext& Core()
{
    if (tls_core == nullptr) {
        Fail("an AscendC kernel API was called outside a kernel run (use ICPU_RUN_KF)");
    }
    return *tls_core;
}

// ---------------------------------------------------------------------------------------
// Cooperative scheduler.
// ---------------------------------------------------------------------------------------

/// Scheduling state of one instance.
enum class InstState { kNotStarted, kRunning, kBlocked, kDone };

/// Cross-core flag state of one run. Every core has one counter per flag id; CrossCoreWaitFlag
/// blocks until its own counter is non-zero and then decrements it. CrossCoreSetFlag decides
/// whose counters are incremented: mode 0 - every core of the setter's type, once all of them
/// have set; mode 1 - both AIVs of the group, once both have set; mode 2 - from an AIC, its
/// AIVs; from the AIVs, their AIC once every AIV of the group has set.
struct FlagState {
    std::map<std::pair<int, int>, int> counter;  // (instance, flag) -> pending signals
    std::map<std::pair<int, int>, int> sets;     // (instance, flag * 4 + mode) -> sets done
    std::map<std::pair<int, int>, int> credited; // (group key, flag * 4 + mode) -> rounds delivered
};

/// One ICPU_RUN_KF execution.
struct KernelRun {
    std::mutex mu;
    std::condition_variable cv;
    int running = -1;
    bool finished = false;
    KernelMode mode = KernelMode::MIX_MODE;
    std::string name;
    std::vector<std::unique_ptr<CoreContext>> cores;
    std::vector<InstState> state;
    std::vector<std::function<bool()>> cond;
    std::vector<std::string> waitWhat;
    // SyncAll barrier
    uint64_t barrierGen = 0;
    int barrierArrived = 0;
    FlagState flags;
    const std::function<void()>* body = nullptr;
    std::deque<std::thread> threads;  // worker threads (one more whenever an instance blocks)
    std::vector<size_t> doneList;     // finished workers not joined yet
};

inline void WorkerMain(KernelRun* run, int me, size_t slot);

/// The run in progress (one at a time).
inline KernelRun* g_run = nullptr;

/// Kernel mode chosen with AscendC::SetKernelMode (default MIX, as in CANN).
inline KernelMode g_kernelModeSetting = KernelMode::MIX_MODE;

inline const char* KernelModeName(KernelMode m)
{
    switch (m) {
        case KernelMode::MIX_MODE: return "KernelMode::MIX_MODE";
        case KernelMode::AIC_MODE: return "KernelMode::AIC_MODE";
        case KernelMode::AIV_MODE: return "KernelMode::AIV_MODE";
        default: return "KernelMode::MIX_AIC_1_1";
    }
}

/// Picks the instance to run after `from` (in index order): one not started yet, or a blocked
/// one whose condition now holds. Returns -1 when every instance is done; reports a deadlock
/// when instances are blocked and none can proceed. Caller holds run.mu.
inline int PickNextLocked(KernelRun& run, int from)
{
    int n = static_cast<int>(run.state.size());
    for (int k = 1; k <= n; ++k) {
        int j = (from + k) % n;
        if (run.state[j] == InstState::kNotStarted) return j;
        if (run.state[j] == InstState::kBlocked && run.cond[j] && run.cond[j]()) return j;
    }
    bool allDone = std::all_of(run.state.begin(), run.state.end(), [](InstState s) { return s == InstState::kDone; });
    if (allDone) return -1;
    std::string msg = Str("deadlock in kernel ", run.name, ": every unfinished core is waiting and none can proceed:");
    for (int j = 0; j < n; ++j) {
        if (run.state[j] == InstState::kBlocked) {
            msg += Str("\n    ", run.cores[j]->Describe(), " waits in ", run.waitWhat[j]);
        }
    }
    Fail(msg);
}

/// Gives the baton to instance j (starting a worker thread if it has not started). Caller holds run.mu.
inline void GiveBatonLocked(KernelRun& run, int j)
{
    if (j < 0) {
        run.finished = true;
        run.running = -1;
    } else {
        if (run.state[j] == InstState::kNotStarted) {
            run.state[j] = InstState::kRunning;
            run.threads.emplace_back(WorkerMain, &run, j, run.threads.size());
        }
        run.running = j;
    }
    run.cv.notify_all();
}

/// Blocks the current instance until cond() holds, letting other instances run.
inline void BlockUntil(const std::function<bool()>& cond, const std::string& what)
{
    KernelRun* run = g_run;
    CoreContext& c = Core();
    std::unique_lock<std::mutex> lk(run->mu);
    if (cond()) return;
    int me = c.instance;
    run->state[me] = InstState::kBlocked;
    run->cond[me] = cond;
    run->waitWhat[me] = what;
    GiveBatonLocked(*run, PickNextLocked(*run, me));
    run->cv.wait(lk, [&] { return run->running == me; });
    run->state[me] = InstState::kRunning;
    run->cond[me] = nullptr;
}

/// Checks that no queue buffer is still held at the end of an instance.
inline void EndOfInstanceChecks(CoreContext& c)
{
    std::string held;
    for (size_t q = 0; q < c.queues.size(); ++q) {
        const QueueRec& qr = c.queues[q];
        for (int b : qr.bufs) {
            const BufferRec& br = c.bufs[b];
            if (br.state == AscendC::TBufState::FREE) continue;
            const char* st = br.state == AscendC::TBufState::OCCUPIED ? "allocated by AllocTensor, never EnQue'd or freed"
                : br.state == AscendC::TBufState::ENQUE              ? "EnQue'd but never DeQue'd"
                                                                      : "DeQue'd but never FreeTensor'd";
            held += Str("\n    ", qr.name, " buffer ", br.index, ": ", st);
        }
    }
    if (!held.empty()) {
        Fail(Str("kernel ", c.kernelName, " returned with queue tensors still held (unbalanced AllocTensor/FreeTensor "
            "or EnQue/DeQue):", held));
    }
}

/// Runs instances on one thread: `me` first, then, while the next instance to run has not
/// started yet, that one (so that a launch without blocking waits uses a single worker).
inline void WorkerMain(KernelRun* run, int me, size_t slot)
{
    {
        std::unique_lock<std::mutex> lk(run->mu);
        run->cv.wait(lk, [&] { return run->running == me; });
    }
    while (true) {
        CoreContext* c = run->cores[me].get();
        tls_core = c;
        g_coreType = c->coreType;
        block_idx = c->rawBlockIdx;
        block_num = c->blockNum;
        sub_block_idx = c->subBlockIdx;
        g_taskRation = c->taskRation;
        tls_context = Str("kernel ", run->name, ", ", c->Describe());
        (*run->body)();
        EndOfInstanceChecks(*c);
        tls_context.clear();
        tls_core = nullptr;
        for (auto*& p : c->arena) {
            std::free(p);
            p = nullptr;
        }
        std::vector<BufferRec>().swap(c->bufs);
        std::vector<QueueRec>().swap(c->queues);
        std::unique_lock<std::mutex> lk(run->mu);
        run->state[me] = InstState::kDone;
        int next = PickNextLocked(*run, me);
        if (next >= 0 && run->state[next] == InstState::kNotStarted) {
            run->state[next] = InstState::kRunning;
            run->running = next;
            me = next;
            continue;
        }
        run->doneList.push_back(slot);
        GiveBatonLocked(*run, next);
        return;
    }
}

/// Runs a kernel: one instance per core of the current KernelMode, each in turn.
inline void RunKernel(const char* name, int64_t blockDim, const std::function<void()>& body)
{
    if (g_run != nullptr) Fail(Str("ICPU_RUN_KF(", name, ") called while another kernel is running"));
    if (blockDim < 1 || blockDim > 65535) {
        Fail(Str("ICPU_RUN_KF(", name, ", blockDim=", blockDim, "): blockDim must be in [1, 65535]"));
    }
    KernelRun run;
    run.name = name;
    run.mode = g_kernelModeSetting;
    struct Desc {
        int32_t type;
        int64_t blk;
        int32_t sub;
        int32_t ration;
    };
    std::vector<Desc> descs;
    for (int64_t b = 0; b < blockDim; ++b) {
        switch (run.mode) {
            case KernelMode::AIV_MODE: descs.push_back({AscendC::AIV, b, 0, 1}); break;
            case KernelMode::AIC_MODE: descs.push_back({AscendC::AIC, b, 0, 1}); break;
            case KernelMode::MIX_AIC_1_1:
                descs.push_back({AscendC::AIC, b, 0, 1});
                descs.push_back({AscendC::AIV, b, 0, 1});
                break;
            default:
                descs.push_back({AscendC::AIC, b, 0, 1});
                descs.push_back({AscendC::AIV, b, 0, 2});
                descs.push_back({AscendC::AIV, b, 1, 2});
                break;
        }
    }
    int n = static_cast<int>(descs.size());
    for (int i = 0; i < n; ++i) {
        auto c = std::make_unique<CoreContext>();
        c->instance = i;
        c->instanceCount = n;
        c->coreType = descs[i].type;
        c->rawBlockIdx = descs[i].blk;
        c->subBlockIdx = descs[i].sub;
        c->taskRation = descs[i].ration;
        c->blockNum = blockDim;
        c->group = static_cast<int>(descs[i].blk);
        c->kernelName = name;
        run.cores.push_back(std::move(c));
    }
    run.state.assign(n, InstState::kNotStarted);
    run.cond.assign(n, nullptr);
    run.waitWhat.assign(n, std::string());
    run.body = &body;
    g_run = &run;
    std::fflush(stdout);
    {
        std::unique_lock<std::mutex> lk(run.mu);
        GiveBatonLocked(run, 0);
        // join finished workers as they complete
        while (true) {
            if (!run.doneList.empty()) {
                std::vector<size_t> toJoin;
                toJoin.swap(run.doneList);
                std::vector<std::thread*> ts;
                for (size_t i : toJoin) ts.push_back(&run.threads[i]);
                lk.unlock();
                for (auto* t : ts) t->join();
                lk.lock();
                continue;
            }
            if (run.finished) break;
            run.cv.wait(lk);
        }
    }
    g_run = nullptr;
}

/// Checks KERNEL_TASK_TYPE_DEFAULT against the KernelMode ICPU_RUN_KF was started with.
inline void DeclareKernelType(KernelMetaType t)
{
    CoreContext& c = Core();
    KernelMode m = g_run->mode;
    KernelMode want = m;
    const char* tn = "";
    switch (t) {
        case KERNEL_TYPE_AIV_ONLY: want = KernelMode::AIV_MODE; tn = "KERNEL_TYPE_AIV_ONLY"; break;
        case KERNEL_TYPE_MIX_AIV_1_0: want = KernelMode::AIV_MODE; tn = "KERNEL_TYPE_MIX_AIV_1_0"; break;
        case KERNEL_TYPE_AIC_ONLY: want = KernelMode::AIC_MODE; tn = "KERNEL_TYPE_AIC_ONLY"; break;
        case KERNEL_TYPE_MIX_AIC_1_0: want = KernelMode::AIC_MODE; tn = "KERNEL_TYPE_MIX_AIC_1_0"; break;
        case KERNEL_TYPE_MIX_AIC_1_1: want = KernelMode::MIX_AIC_1_1; tn = "KERNEL_TYPE_MIX_AIC_1_1"; break;
        case KERNEL_TYPE_MIX_AIC_1_2: want = KernelMode::MIX_MODE; tn = "KERNEL_TYPE_MIX_AIC_1_2"; break;
        default:
            Fail(Str("KERNEL_TASK_TYPE_DEFAULT(", static_cast<int>(t),
                "): KERNEL_TYPE_AICORE / VECTORCORE / MIX_AICORE / MIX_VECTOR_CORE are for coupled-architecture SoCs, "
                "not Atlas A2 (910B)"));
    }
    if (want != m) {
        Fail(Str("kernel ", c.kernelName, " declares KERNEL_TASK_TYPE_DEFAULT(", tn, ") but ICPU_RUN_KF ran it in ",
            KernelModeName(m), "; call AscendC::SetKernelMode(", KernelModeName(want), ") before ICPU_RUN_KF"));
    }
}

}  // namespace tessera_ascendc_cpu

/// Declares the kernel type (checked against AscendC::SetKernelMode on the CPU).
#define KERNEL_TASK_TYPE_DEFAULT(value) \
    { ::tessera_ascendc_cpu::DeclareKernelType(value); }
/// Declares the kernel type for a tiling key (checked like KERNEL_TASK_TYPE_DEFAULT).
#define KERNEL_TASK_TYPE(key, value) \
    { (void)(key); ::tessera_ascendc_cpu::DeclareKernelType(value); }

namespace tessera_ascendc_cpu {
/// Calls the kernel `f(args...)` on every core of a launch (see ICPU_RUN_KF).
template <typename F, typename... A>
inline void RunKernelFn(const char* name, F* f, int64_t blockDim, A... args)
{
    RunKernel(name, blockDim, [&]() { f(args...); });
}
}  // namespace tessera_ascendc_cpu

/// Runs `func(args...)` once per core (blockDim instances in AIV_MODE / AIC_MODE, blockDim
/// groups of 1 AIC + 2 AIV in MIX_MODE), one instance after the other. Usage:
/// ICPU_RUN_KF(func, blockDim, args...).
#define ICPU_RUN_KF(func, ...) ::tessera_ascendc_cpu::RunKernelFn(#func, func, __VA_ARGS__)

/// Tiling keys are not used by the Tessera CPU build.
#define ICPU_SET_TILING_KEY(tilingKey) ((void)(tilingKey))

namespace AscendC {

/// Allocates device (GM) memory usable by kernels run with ICPU_RUN_KF (zero-filled).
inline void* GmAlloc(size_t size)
{
    void* p = tessera_ascendc_cpu::RegisteredAlloc(size, tessera_ascendc_cpu::AllocKind::kGmAlloc, 0);
    if (p == nullptr) tessera_ascendc_cpu::Fail(tessera_ascendc_cpu::Str("GmAlloc(", size, "): out of memory"));
    return p;
}

/// Frees memory from GmAlloc.
inline void GmFree(void* ptr)
{
    if (ptr == nullptr) return;
    if (!tessera_ascendc_cpu::RegisteredFree(ptr, true)) {
        tessera_ascendc_cpu::Fail(tessera_ascendc_cpu::Str("GmFree(", ptr, "): not a live GmAlloc/aclrtMalloc pointer"));
    }
}

/// Chooses how ICPU_RUN_KF maps blockDim to cores.
inline void SetKernelMode(KernelMode mode) { tessera_ascendc_cpu::g_kernelModeSetting = mode; }

/// Block index of this instance (AIV in MIX mode: block * 2 + sub-block).
inline int64_t GetBlockIdx() { return tessera_ascendc_cpu::Core().BlockIdx(); }
/// Number of blocks (blockDim) of the launch.
inline int64_t GetBlockNum() { return tessera_ascendc_cpu::Core().blockNum; }
/// 0/1 on the two AIVs of a group, 0 on AIC.
inline int64_t GetSubBlockIdx()
{
    auto& c = tessera_ascendc_cpu::Core();
    return c.coreType == AIV ? c.subBlockIdx : 0;
}
/// AIV-per-AIC ratio of the launch (2 in MIX mode on AIV, else 1).
inline int64_t GetTaskRation() { return tessera_ascendc_cpu::Core().taskRation; }

/// No-op on the CPU.
inline void InitSocState() {}

/// Orders instructions of one pipe: nothing to do when instructions run in program order.
template <pipe_t pipe>
inline void PipeBarrier()
{
    static_assert(pipe <= PIPE_FIX, "invalid pipe_t");
}

/// Cross-pipe flag (validated; instructions already run in program order on the CPU).
template <HardEvent event>
inline void SetFlag(int32_t eventID)
{
    static_assert(event < HardEvent::MAX, "invalid HardEvent");
    if (eventID < 0 || eventID >= QUE_MAX_EVENT) {
        tessera_ascendc_cpu::Fail(tessera_ascendc_cpu::Str("SetFlag<HardEvent ", static_cast<int>(event), ">(", eventID,
            "): event id must be in [0, 7]"));
    }
}

/// Cross-pipe wait (validated; see SetFlag).
template <HardEvent event>
inline void WaitFlag(int32_t eventID)
{
    static_assert(event < HardEvent::MAX, "invalid HardEvent");
    if (eventID < 0 || eventID >= QUE_MAX_EVENT) {
        tessera_ascendc_cpu::Fail(tessera_ascendc_cpu::Str("WaitFlag<HardEvent ", static_cast<int>(event), ">(", eventID,
            "): event id must be in [0, 7]"));
    }
}

/// Barrier over all AIV cores (isAIVOnly) or all cores of the launch.
template <bool isAIVOnly = true>
inline void SyncAll()
{
    using namespace tessera_ascendc_cpu;
    CoreContext& c = Core();
    if (isAIVOnly && c.coreType != AIV) return;
    KernelRun* run = g_run;
    int participants = 0;
    for (auto& o : run->cores) {
        if (!isAIVOnly || o->coreType == AIV) ++participants;
    }
    uint64_t myGen;
    {
        std::lock_guard<std::mutex> lk(run->mu);
        myGen = run->barrierGen;
        if (++run->barrierArrived == participants) {
            run->barrierArrived = 0;
            ++run->barrierGen;
            return;
        }
    }
    BlockUntil([run, myGen] { return run->barrierGen != myGen; },
        Str("SyncAll (waiting for all ", participants, isAIVOnly ? " AIV" : "", " cores to arrive)"));
}

/// Signals a cross-core flag (mode 0: all cores of this type once all have set, 1: the two
/// AIVs of a group once both have set, 2: AIC -> its AIVs, AIVs -> their AIC once all have set).
template <uint8_t modeId, pipe_t pipe>
inline void CrossCoreSetFlag(uint16_t flagId)
{
    using namespace tessera_ascendc_cpu;
    static_assert(modeId <= 2, "CrossCoreSetFlag mode must be 0, 1 or 2");
    CoreContext& c = Core();
    KernelRun* run = g_run;
    if (flagId > 10) Fail(Str("CrossCoreSetFlag<", int(modeId), ">(", flagId, "): flag id must be in [0, 10]"));
    if (modeId != 0 && run->mode != KernelMode::MIX_MODE && run->mode != KernelMode::MIX_AIC_1_1) {
        Fail(Str("CrossCoreSetFlag<", int(modeId), ">: modes 1 and 2 synchronise the cores of one AI Core group and "
            "need a MIX kernel (", KernelModeName(run->mode), " has no groups)"));
    }
    if (modeId == 1 && c.coreType != AIV) Fail("CrossCoreSetFlag<1> (AIV <-> AIV) called on an AIC");
    std::lock_guard<std::mutex> lk(run->mu);
    FlagState& f = run->flags;
    const int key = flagId * 4 + modeId;
    std::vector<int> senders;    // cores whose sets form one round
    std::vector<int> receivers;  // cores whose counters a round increments
    int groupKey = 0;
    for (auto& o : run->cores) {
        bool sameGroup = o->group == c.group;
        if (modeId == 0 && o->coreType == c.coreType) {
            senders.push_back(o->instance);
            receivers.push_back(o->instance);
        } else if (modeId == 1 && sameGroup && o->coreType == AIV) {
            senders.push_back(o->instance);
            receivers.push_back(o->instance);
        } else if (modeId == 2 && sameGroup) {
            if (o->coreType == c.coreType) senders.push_back(o->instance);
            else receivers.push_back(o->instance);
        }
    }
    groupKey = modeId == 0 ? -1 - c.coreType : (modeId == 1 ? c.group * 2 : c.group * 2 + (c.coreType == AIC ? 1 : 0));
    ++f.sets[{c.instance, key}];
    int rounds = INT32_MAX;
    for (int sdr : senders) rounds = std::min(rounds, f.sets[{sdr, key}]);
    int& done = f.credited[{groupKey, key}];
    for (; done < rounds; ++done) {
        for (int r : receivers) {
            if (++f.counter[{r, flagId}] > 15) {
                Fail(Str("CrossCoreSetFlag<", int(modeId), ">(", flagId, "): ", run->cores[r]->Describe(),
                    " has 15 unconsumed signals of this flag (the hardware counter saturates)"));
            }
        }
    }
}

/// Waits until this core's counter of `flagId` is non-zero, then decrements it.
template <uint8_t modeId = 0, pipe_t pipe = PIPE_S>
inline void CrossCoreWaitFlag(uint16_t flagId)
{
    using namespace tessera_ascendc_cpu;
    static_assert(modeId <= 2, "CrossCoreWaitFlag mode must be 0, 1 or 2");
    CoreContext& c = Core();
    KernelRun* run = g_run;
    if (flagId > 10) Fail(Str("CrossCoreWaitFlag(", flagId, "): flag id must be in [0, 10]"));
    std::pair<int, int> k{c.instance, flagId};
    BlockUntil([run, k] { return run->flags.counter[k] > 0; }, Str("CrossCoreWaitFlag(", flagId, ")"));
    std::lock_guard<std::mutex> lk(run->mu);
    --run->flags.counter[k];
}

}  // namespace AscendC

#endif  // TESSERA_ASCENDC_CPU_RUNTIME_H
