// Tessera CPU build of the Ascend C API subset: tensors, TPipe, TQue, TBuf.
//
// A LocalTensor is a view (byte offset + length) into one of the running core's local
// buffers, remembering which InitBuffer buffer it came from; every access is checked for
// bounds, for the buffer still being held (not freed, not sitting in a queue, TPipe not
// destroyed) and, for vector/cube operands, for position and address alignment.
// A GlobalTensor is a pointer into GM; every access is checked against the size given to
// SetGlobalBuffer (when given) and against the GmAlloc/aclrtMalloc allocation.
#ifndef TESSERA_ASCENDC_CPU_TENSOR_H
#define TESSERA_ASCENDC_CPU_TENSOR_H

#include "runtime.h"

namespace tessera_ascendc_cpu {

/// Where a LocalTensor points.
struct LocalRef {
    CoreContext* core = nullptr;
    AscendC::Hardware hw = AscendC::Hardware::MAX;
    AscendC::TPosition pos = AscendC::TPosition::MAX;
    uint32_t off = 0;     // byte offset of element 0 in the physical buffer
    uint32_t len = 0;     // bytes visible through this tensor (GetSize() * sizeof(T))
    uint32_t bufEnd = 0;  // byte offset of the end of the InitBuffer buffer
    int buf = -1;         // index in CoreContext::bufs
    uint32_t gen = 0;     // generation of that buffer when this view was made
};

/// Checks that the tensor's buffer is still held by the kernel; returns its core.
inline CoreContext& CheckLive(const LocalRef& r, const char* what)
{
    if (r.core == nullptr) Fail(Str(what, ": LocalTensor is empty (not obtained from AllocTensor/DeQue/TBuf::Get)"));
    CoreContext& c = Core();
    if (r.core != &c) Fail(Str(what, ": LocalTensor belongs to another core or to a finished kernel"));
    if (r.buf < 0 || r.buf >= static_cast<int>(c.bufs.size())) Fail(Str(what, ": LocalTensor has no buffer"));
    const BufferRec& b = c.bufs[r.buf];
    if (!b.alive) Fail(Str(what, ": LocalTensor used after TPipe::Destroy/Reset released its buffer"));
    if (b.queue >= 0) {
        const QueueRec& q = c.queues[b.queue];
        if (b.gen != r.gen || b.state == AscendC::TBufState::FREE) {
            Fail(Str(what, ": LocalTensor used after FreeTensor (", q.name, " buffer ", b.index,
                " may already hold other data)"));
        }
        if (b.state == AscendC::TBufState::ENQUE) {
            Fail(Str(what, ": LocalTensor accessed while it sits in ", q.name, " (between EnQue and DeQue); "
                "use the tensor returned by DeQue"));
        }
    }
    return c;
}

/// Checks a local operand: live, in one of the allowed physical buffers, aligned, and with
/// `bytes` bytes inside the tensor. Returns a pointer to its first byte.
inline uint8_t* CheckLocal(const LocalRef& r, const char* what, uint64_t bytes, uint32_t align,
    std::initializer_list<AscendC::Hardware> allowed)
{
    CoreContext& c = CheckLive(r, what);
    bool ok = false;
    for (auto h : allowed) ok = ok || (h == r.hw);
    if (!ok) {
        std::string names;
        for (auto h : allowed) names += Str(names.empty() ? "" : " or ", HwName(h));
        Fail(Str(what, ": operand is at TPosition::", PosName(r.pos), " (", HwName(r.hw), "); this operation needs ",
            names));
    }
    if (align > 1 && r.off % align != 0) {
        Fail(Str(what, ": local address ", r.off, " (byte offset in the ", HwName(r.hw), ") is not ", align,
            "-byte aligned"));
    }
    if (bytes > r.len) {
        Fail(Str(what, ": out of bounds: the operation touches ", bytes, " bytes but the LocalTensor at TPosition::",
            PosName(r.pos), " holds ", r.len, " bytes"));
    }
    return c.Arena(r.hw) + r.off;
}

/// Checks a UB vector operand of `count` elements of `elem` bytes (32-byte aligned).
inline uint8_t* CheckVec(const LocalRef& r, const char* what, uint64_t count, size_t elem)
{
    return CheckLocal(r, what, count * elem, 32, {AscendC::Hardware::UB});
}

}  // namespace tessera_ascendc_cpu

namespace AscendC {

template <typename T>
class LocalTensor;
template <typename T>
class GlobalTensor;
class TPipe;

/// A tensor in a core-local buffer (UB, L1, L0A, L0B, L0C).
template <typename T>
class LocalTensor {
public:
    using PrimType = T;
    LocalTensor() {}

    /// Scalar read (UB positions only, as on hardware).
    T GetValue(const uint32_t index) const
    {
        return tessera_ascendc_cpu::LoadElem<T>(ScalarAddr(index, "LocalTensor::GetValue"));
    }
    /// Scalar reference (UB positions only).
    T& operator()(const uint32_t index) const
    {
        return *reinterpret_cast<T*>(ScalarAddr(index, "LocalTensor::operator()"));
    }
    /// Scalar write (UB positions only); the value is converted to T.
    template <typename T1>
    void SetValue(const uint32_t index, const T1 value) const
    {
        T v = static_cast<T>(value);
        tessera_ascendc_cpu::StoreElem<T>(ScalarAddr(index, "LocalTensor::SetValue"), v);
    }
    /// View starting `offset` elements later (offset must be inside the tensor).
    LocalTensor operator[](const uint32_t offset) const
    {
        using namespace tessera_ascendc_cpu;
        if (tessera_ref_.core == nullptr) Fail("LocalTensor::operator[]: empty LocalTensor");
        uint64_t bytes = static_cast<uint64_t>(offset) * sizeof(T);
        if (bytes >= tessera_ref_.len) {
            Fail(Str("LocalTensor::operator[](", offset, "): offset is not smaller than the tensor size ", GetSize(),
                " (TPosition::", PosName(tessera_ref_.pos), ")"));
        }
        LocalTensor r = *this;
        r.tessera_ref_.off += static_cast<uint32_t>(bytes);
        r.tessera_ref_.len -= static_cast<uint32_t>(bytes);
        return r;
    }
    /// Number of elements.
    uint32_t GetSize() const { return static_cast<uint32_t>(tessera_ref_.len / sizeof(T)); }
    /// Sets the number of elements (must stay inside the InitBuffer buffer).
    void SetSize(const uint32_t size)
    {
        using namespace tessera_ascendc_cpu;
        uint64_t bytes = static_cast<uint64_t>(size) * sizeof(T);
        if (tessera_ref_.core != nullptr && tessera_ref_.off + bytes > tessera_ref_.bufEnd) {
            Fail(Str("LocalTensor::SetSize(", size, "): ", bytes, " bytes do not fit in the ",
                tessera_ref_.bufEnd - tessera_ref_.off, " bytes left in its buffer"));
        }
        tessera_ref_.len = static_cast<uint32_t>(bytes);
    }
    /// Same bytes seen as another element type.
    template <typename CAST_T>
    LocalTensor<CAST_T> ReinterpretCast() const
    {
        LocalTensor<CAST_T> r;
        r.tessera_ref_ = tessera_ref_;
        r.tessera_ref_.len = static_cast<uint32_t>(tessera_ref_.len / sizeof(CAST_T) * sizeof(CAST_T));
        return r;
    }
    /// Logical position (as an int, like CANN).
    int32_t GetPosition() const { return static_cast<int32_t>(tessera_ref_.pos); }
    /// Host pointer to element 0 (CPU-debug only).
    T* GetPhyAddr() const { return GetPhyAddr(0); }
    /// Host pointer to element `offset` (CPU-debug only).
    T* GetPhyAddr(const uint32_t offset) const
    {
        tessera_ascendc_cpu::CoreContext& c = tessera_ascendc_cpu::CheckLive(tessera_ref_, "LocalTensor::GetPhyAddr");
        return reinterpret_cast<T*>(c.Arena(tessera_ref_.hw) + tessera_ref_.off + offset * sizeof(T));
    }

    tessera_ascendc_cpu::LocalRef tessera_ref_;

private:
    uint8_t* ScalarAddr(uint32_t index, const char* what) const
    {
        using namespace tessera_ascendc_cpu;
        CoreContext& c = CheckLive(tessera_ref_, what);
        if (tessera_ref_.hw != Hardware::UB) {
            Fail(Str(what, ": scalar access to a tensor at TPosition::", PosName(tessera_ref_.pos), " (",
                HwName(tessera_ref_.hw), "); the scalar unit can only read/write VECIN/VECOUT/VECCALC"));
        }
        if (static_cast<uint64_t>(index) * sizeof(T) + sizeof(T) > tessera_ref_.len) {
            Fail(Str(what, "(", index, "): out of bounds, the LocalTensor holds ", GetSize(), " elements of ",
                TypeName<T>()));
        }
        return c.Arena(tessera_ref_.hw) + tessera_ref_.off + static_cast<size_t>(index) * sizeof(T);
    }
};

/// A tensor in global memory.
template <typename T>
class GlobalTensor {
public:
    using PrimType = T;
    GlobalTensor() {}

    /// Points the tensor at `buffer`, holding `bufferSize` elements (accesses are checked).
    void SetGlobalBuffer(__gm__ T* buffer, uint64_t bufferSize)
    {
        tessera_addr_ = buffer;
        tessera_origin_ = buffer;
        bufferSize_ = bufferSize;
        tessera_sized_ = true;
    }
    /// Points the tensor at `buffer` (accesses are checked against its allocation only).
    void SetGlobalBuffer(__gm__ T* buffer)
    {
        tessera_addr_ = buffer;
        tessera_origin_ = buffer;
        bufferSize_ = 0;
        tessera_sized_ = false;
    }
    /// Address of element 0.
    const __gm__ T* GetPhyAddr() const { return tessera_addr_; }
    /// Address of element `offset`.
    __gm__ T* GetPhyAddr(const uint64_t offset) const { return tessera_addr_ + offset; }
    /// Scalar read.
    T GetValue(const uint64_t offset) const
    {
        return tessera_ascendc_cpu::LoadElem<T>(
            reinterpret_cast<const uint8_t*>(TesseraCheck(offset, 1, "GlobalTensor::GetValue")));
    }
    /// Scalar reference.
    __gm__ T& operator()(const uint64_t offset) const { return *TesseraCheck(offset, 1, "GlobalTensor::operator()"); }
    /// Scalar write.
    void SetValue(const uint64_t offset, T value)
    {
        tessera_ascendc_cpu::StoreElem<T>(reinterpret_cast<uint8_t*>(TesseraCheck(offset, 1, "GlobalTensor::SetValue")),
            value);
    }
    /// Size given to SetGlobalBuffer (0 if none).
    uint64_t GetSize() const { return bufferSize_; }
    /// View starting `offset` elements later.
    GlobalTensor operator[](const uint64_t offset) const
    {
        GlobalTensor r = *this;
        r.tessera_addr_ = tessera_addr_ + offset;
        return r;
    }

    /// Checks that elements [offset, offset + count) may be accessed; returns their address.
    T* TesseraCheck(uint64_t offset, uint64_t count, const char* what) const
    {
        using namespace tessera_ascendc_cpu;
        if (tessera_addr_ == nullptr) Fail(Str(what, ": GlobalTensor used before SetGlobalBuffer"));
        T* p = tessera_addr_ + offset;
        if (count == 0) return p;
        if (tessera_sized_) {
            int64_t start = static_cast<int64_t>(p - tessera_origin_);
            if (start < 0 || static_cast<uint64_t>(start) + count > bufferSize_) {
                Fail(Str(what, ": GlobalTensor access to elements [", start, ", ", start + static_cast<int64_t>(count),
                    ") is outside the ", bufferSize_, " elements given to SetGlobalBuffer"));
            }
        }
        CheckDeviceRange(p, count * sizeof(T), what);
        return p;
    }
    /// Checks a byte range starting at element `offset` (may end mid-element); returns its address.
    uint8_t* TesseraCheckBytes(uint64_t offset, uint64_t bytes, const char* what) const
    {
        using namespace tessera_ascendc_cpu;
        if (tessera_addr_ == nullptr) Fail(Str(what, ": GlobalTensor used before SetGlobalBuffer"));
        uint8_t* p = reinterpret_cast<uint8_t*>(tessera_addr_ + offset);
        if (bytes == 0) return p;
        if (tessera_sized_) {
            int64_t start = reinterpret_cast<uint8_t*>(tessera_addr_ + offset) -
                reinterpret_cast<uint8_t*>(tessera_origin_);
            if (start < 0 || static_cast<uint64_t>(start) + bytes > bufferSize_ * sizeof(T)) {
                Fail(Str(what, ": GlobalTensor access to bytes [", start, ", ", start + static_cast<int64_t>(bytes),
                    ") is outside the ", bufferSize_, " elements (", bufferSize_ * sizeof(T),
                    " bytes) given to SetGlobalBuffer"));
            }
        }
        CheckDeviceRange(p, bytes, what);
        return p;
    }

    uint64_t bufferSize_ = 0;
    T* tessera_addr_ = nullptr;
    T* tessera_origin_ = nullptr;
    bool tessera_sized_ = false;
};

template <TPosition src, TPosition dst, int32_t depth, auto mask = 0>
class TQueBind;
template <TPosition pos, int32_t depth, auto mask = 0>
class TQue;
template <TPosition pos = TPosition::LCM>
class TBuf;

namespace tessera_queue_detail {
/// Makes a LocalTensor<T> over a whole buffer.
template <typename T>
inline LocalTensor<T> TensorOver(tessera_ascendc_cpu::CoreContext& c, int buf)
{
    const tessera_ascendc_cpu::BufferRec& b = c.bufs[buf];
    LocalTensor<T> t;
    t.tessera_ref_.core = &c;
    t.tessera_ref_.hw = b.hw;
    t.tessera_ref_.pos = b.pos;
    t.tessera_ref_.off = b.off;
    t.tessera_ref_.len = static_cast<uint32_t>(b.len / sizeof(T) * sizeof(T));
    t.tessera_ref_.bufEnd = b.off + b.len;
    t.tessera_ref_.buf = buf;
    t.tessera_ref_.gen = b.gen;
    return t;
}
}  // namespace tessera_queue_detail

/// A FIFO of local buffers whose producer and consumer positions may differ.
template <TPosition src, TPosition dst, int32_t depth, auto mask>
class TQueBind {
public:
    TQueBind() {}

    /// Takes a free buffer (error if every buffer is allocated or enqueued).
    template <typename T>
    LocalTensor<T> AllocTensor()
    {
        using namespace tessera_ascendc_cpu;
        QueueRec& q = Rec("AllocTensor");
        CoreContext& c = *tessera_core_;
        for (size_t k = 0; k < q.bufs.size(); ++k) {
            size_t i = (q.cursor + k) % q.bufs.size();
            BufferRec& b = c.bufs[q.bufs[i]];
            if (b.state == TBufState::FREE) {
                b.state = TBufState::OCCUPIED;
                q.cursor = (i + 1) % q.bufs.size();
                return tessera_queue_detail::TensorOver<T>(c, q.bufs[i]);
            }
        }
        Fail(Str("AllocTensor on ", q.name, ": all ", q.bufs.size(), " buffers are already allocated or enqueued "
            "(more AllocTensor than FreeTensor; on hardware this waits forever)"));
    }
    /// Returns a buffer to the queue.
    template <typename T>
    void FreeTensor(LocalTensor<T>& tensor)
    {
        using namespace tessera_ascendc_cpu;
        QueueRec& q = Rec("FreeTensor");
        BufferRec& b = Own(q, tensor.tessera_ref_, "FreeTensor");
        if (b.state == TBufState::FREE || b.gen != tensor.tessera_ref_.gen) {
            Fail(Str("FreeTensor on ", q.name, ": buffer ", b.index, " is already free (double FreeTensor)"));
        }
        if (b.state == TBufState::ENQUE) {
            Fail(Str("FreeTensor on ", q.name, ": buffer ", b.index, " is still enqueued (DeQue it first)"));
        }
        b.state = TBufState::FREE;
        ++b.gen;
    }
    /// Publishes an allocated tensor (error beyond the queue depth).
    template <typename T>
    bool EnQue(const LocalTensor<T>& tensor)
    {
        using namespace tessera_ascendc_cpu;
        QueueRec& q = Rec("EnQue");
        BufferRec& b = Own(q, tensor.tessera_ref_, "EnQue");
        if (b.state != TBufState::OCCUPIED || b.gen != tensor.tessera_ref_.gen) {
            const char* st = b.state == TBufState::FREE ? "free (freed or never allocated)"
                : b.state == TBufState::ENQUE           ? "already enqueued"
                                                        : "dequeued (FreeTensor it instead of EnQue-ing it again)";
            Fail(Str("EnQue on ", q.name, ": buffer ", b.index, " is ", st, "; only a tensor from AllocTensor can be "
                "enqueued"));
        }
        if (static_cast<int32_t>(q.fifo.size()) >= q.depth) {
            Fail(Str("EnQue on ", q.name, ": the queue already holds ", q.fifo.size(), " tensor(s), its depth is ",
                q.depth, " (EnQue beyond depth: missing DeQue)"));
        }
        b.state = TBufState::ENQUE;
        q.fifo.push_back(b.index);
        return true;
    }
    /// Takes the oldest enqueued tensor (error if the queue is empty).
    template <typename T>
    LocalTensor<T> DeQue()
    {
        using namespace tessera_ascendc_cpu;
        QueueRec& q = Rec("DeQue");
        if (q.fifo.empty()) {
            Fail(Str("DeQue on ", q.name, ": the queue is empty (DeQue without a matching EnQue; on hardware this "
                "waits forever)"));
        }
        int idx = q.fifo.front();
        q.fifo.pop_front();
        int buf = q.bufs[idx];
        tessera_core_->bufs[buf].state = TBufState::DEQUE;
        return tessera_queue_detail::TensorOver<T>(*tessera_core_, buf);
    }
    /// True if another tensor can be enqueued.
    bool VacantInQue() { return static_cast<int32_t>(Rec("VacantInQue").fifo.size()) < Rec("VacantInQue").depth; }
    /// True if a tensor is enqueued.
    bool HasTensorInQue() { return !Rec("HasTensorInQue").fifo.empty(); }
    /// Number of enqueued tensors.
    int32_t GetTensorCountInQue() { return static_cast<int32_t>(Rec("GetTensorCountInQue").fifo.size()); }
    /// True if a buffer is free.
    bool HasIdleBuffer()
    {
        tessera_ascendc_cpu::QueueRec& q = Rec("HasIdleBuffer");
        for (int b : q.bufs) {
            if (tessera_core_->bufs[b].state == TBufState::FREE) return true;
        }
        return false;
    }
    /// Releases the queue's events (no-op on the CPU).
    void FreeAllEvent() {}

    static constexpr TPosition tessera_src_pos = src;
    static constexpr TPosition tessera_dst_pos = dst;
    static constexpr int32_t tessera_depth = depth;
    static constexpr bool tessera_is_queue = true;
    tessera_ascendc_cpu::CoreContext* tessera_core_ = nullptr;
    int tessera_qid_ = -1;

private:
    tessera_ascendc_cpu::QueueRec& Rec(const char* what)
    {
        using namespace tessera_ascendc_cpu;
        if (tessera_core_ == nullptr || tessera_qid_ < 0) {
            Fail(Str(what, ": queue at TPosition::", PosName(src), " used before TPipe::InitBuffer"));
        }
        if (tessera_core_ != &Core()) Fail(Str(what, ": queue was initialised by another core"));
        BufferRec& first = tessera_core_->bufs[tessera_core_->queues[tessera_qid_].bufs[0]];
        if (!first.alive) Fail(Str(what, ": queue used after TPipe::Destroy/Reset"));
        return tessera_core_->queues[tessera_qid_];
    }
    tessera_ascendc_cpu::BufferRec& Own(tessera_ascendc_cpu::QueueRec& q, const tessera_ascendc_cpu::LocalRef& r,
        const char* what)
    {
        using namespace tessera_ascendc_cpu;
        if (r.core == nullptr) Fail(Str(what, " on ", q.name, ": empty LocalTensor"));
        if (r.core != tessera_core_ || r.buf < 0 || tessera_core_->bufs[r.buf].queue != tessera_qid_) {
            Fail(Str(what, " on ", q.name, ": the tensor does not belong to this queue"));
        }
        return tessera_core_->bufs[r.buf];
    }
};

/// A queue at one position (depth = max tensors enqueued at once).
template <TPosition pos, int32_t depth, auto mask>
class TQue : public TQueBind<pos, pos, depth, mask> {
    // CANN's CPU build rejects these at compile time too (GetBufferLogicPos asserts)
    static_assert(pos != TPosition::VECCALC, "TQue<TPosition::VECCALC> is not a valid queue: use TBuf<VECCALC> for "
        "scratch buffers (or a VECIN/VECOUT queue)");
    static_assert(pos != TPosition::GM && pos != TPosition::MAX, "TQue needs a local TPosition");

public:
    TQue() = default;
};

/// A scratch buffer without queue semantics.
template <TPosition pos>
class TBuf {
public:
    TBuf() {}
    /// The whole buffer as T.
    template <typename T>
    LocalTensor<T> Get()
    {
        return tessera_queue_detail::TensorOver<T>(Core("TBuf::Get"), tessera_buf_);
    }
    /// The first `len` elements of the buffer.
    template <typename T>
    LocalTensor<T> Get(uint32_t len)
    {
        using namespace tessera_ascendc_cpu;
        CoreContext& c = Core("TBuf::Get");
        LocalTensor<T> t = tessera_queue_detail::TensorOver<T>(c, tessera_buf_);
        uint64_t bytes = static_cast<uint64_t>(len) * sizeof(T);
        if (bytes > c.bufs[tessera_buf_].len) {
            Fail(Str("TBuf<", PosName(pos), ">::Get(", len, "): ", bytes, " bytes exceed the buffer's ",
                c.bufs[tessera_buf_].len, " bytes"));
        }
        t.tessera_ref_.len = static_cast<uint32_t>(bytes);
        return t;
    }
    /// `size` elements starting `bufOffset` bytes into the buffer.
    template <typename T>
    LocalTensor<T> GetWithOffset(uint32_t size, uint32_t bufOffset)
    {
        using namespace tessera_ascendc_cpu;
        CoreContext& c = Core("TBuf::GetWithOffset");
        LocalTensor<T> t = tessera_queue_detail::TensorOver<T>(c, tessera_buf_);
        uint64_t bytes = static_cast<uint64_t>(size) * sizeof(T);
        if (bufOffset + bytes > c.bufs[tessera_buf_].len) {
            Fail(Str("TBuf<", PosName(pos), ">::GetWithOffset(", size, ", ", bufOffset, "): bytes [", bufOffset, ", ",
                bufOffset + bytes, ") exceed the buffer's ", c.bufs[tessera_buf_].len, " bytes"));
        }
        t.tessera_ref_.off += bufOffset;
        t.tessera_ref_.len = static_cast<uint32_t>(bytes);
        return t;
    }

    static constexpr TPosition tessera_pos = pos;
    tessera_ascendc_cpu::CoreContext* tessera_core_ = nullptr;
    int tessera_buf_ = -1;

private:
    tessera_ascendc_cpu::CoreContext& Core(const char* what)
    {
        using namespace tessera_ascendc_cpu;
        if (tessera_core_ == nullptr || tessera_buf_ < 0) {
            Fail(Str(what, ": TBuf<", PosName(pos), "> used before TPipe::InitBuffer"));
        }
        if (tessera_core_ != &tessera_ascendc_cpu::Core()) Fail(Str(what, ": TBuf was initialised by another core"));
        if (!tessera_core_->bufs[tessera_buf_].alive) Fail(Str(what, ": TBuf used after TPipe::Destroy/Reset"));
        return *tessera_core_;
    }
};

/// Carves the core's local buffers into queues and scratch buffers.
class TPipe {
public:
    TPipe() : core_(&tessera_ascendc_cpu::Core()) { id_ = core_->pipes++; }
    ~TPipe() {}
    TPipe(const TPipe&) = delete;
    TPipe& operator=(const TPipe&) = delete;

    /// No-op (the constructor initialises).
    void Init() {}

    /// Gives `que` `num` buffers of `len` bytes (rounded up to 32 bytes).
    template <class T>
    bool InitBuffer(T& que, uint8_t num, uint32_t len)
    {
        using namespace tessera_ascendc_cpu;
        static_assert(T::tessera_is_queue, "TPipe::InitBuffer(que, num, len) needs a TQue or TQueBind");
        constexpr TPosition pos = T::tessera_src_pos;
        std::string qname = Str("queue #", core_->queues.size(), " (TQue<", PosName(pos), ", depth ", T::tessera_depth,
            ">, ", int(num), " x ", len, " B)");
        CheckPipe("InitBuffer");
        if (que.tessera_qid_ >= 0 && que.tessera_core_ == core_ &&
            core_->bufs[core_->queues[que.tessera_qid_].bufs[0]].alive) {
            Fail(Str("TPipe::InitBuffer: ", qname, ": this queue was already initialised"));
        }
        if (num < 1) Fail(Str("TPipe::InitBuffer: ", qname, ": num must be in [1, 64]"));
        if (len == 0) Fail(Str("TPipe::InitBuffer: ", qname, ": len must be > 0"));
        Hardware hw = HwOf(pos);
        if (hw == Hardware::MAX) {
            Fail(Str("TPipe::InitBuffer: ", qname, ": TPosition::", PosName(pos), " is not a local buffer on Atlas A2"));
        }
        positionBuffers_[static_cast<int>(pos)] += num;
        if (positionBuffers_[static_cast<int>(pos)] > 8) {
            Fail(Str("TPipe::InitBuffer: ", qname, ": more than 8 queue buffers at TPosition::", PosName(pos), " (",
                positionBuffers_[static_cast<int>(pos)], "); each holds one of the 8 hardware event ids of its "
                "position"));
        }
        QueueRec q;
        q.name = qname;
        q.pos = pos;
        q.depth = T::tessera_depth;
        q.cursor = 0;
        int qid = static_cast<int>(core_->queues.size());
        for (int i = 0; i < num; ++i) q.bufs.push_back(Carve(hw, pos, len, qid, i, qname));
        core_->queues.push_back(q);
        que.tessera_core_ = core_;
        que.tessera_qid_ = qid;
        return true;
    }

    /// Gives `buf` one buffer of `len` bytes (rounded up to 32 bytes).
    template <TPosition pos>
    bool InitBuffer(TBuf<pos>& buf, uint32_t len)
    {
        using namespace tessera_ascendc_cpu;
        std::string name = Str("TBuf<", PosName(pos), "> (", len, " B)");
        CheckPipe("InitBuffer");
        if (len == 0) Fail(Str("TPipe::InitBuffer: ", name, ": len must be > 0"));
        Hardware hw = HwOf(pos);
        if (hw == Hardware::MAX) {
            Fail(Str("TPipe::InitBuffer: ", name, ": TPosition::", PosName(pos), " is not a local buffer on Atlas A2"));
        }
        buf.tessera_core_ = core_;
        buf.tessera_buf_ = Carve(hw, pos, len, -1, 0, name);
        return true;
    }

    /// Allocates an event id for SetFlag/WaitFlag.
    template <HardEvent evt>
    TEventID AllocEventID()
    {
        int e = static_cast<int>(evt);
        for (int i = 0; i < QUE_MAX_EVENT; ++i) {
            if (!(events_[e] & (1u << i))) {
                events_[e] |= (1u << i);
                return static_cast<TEventID>(i);
            }
        }
        tessera_ascendc_cpu::Fail(tessera_ascendc_cpu::Str("TPipe::AllocEventID<HardEvent ", e,
            ">: all 8 event ids are in use"));
    }
    /// Releases an event id.
    template <HardEvent evt>
    void ReleaseEventID(TEventID id)
    {
        if (id < 0 || id >= QUE_MAX_EVENT) {
            tessera_ascendc_cpu::Fail(tessera_ascendc_cpu::Str("TPipe::ReleaseEventID(", int(id), "): not in [0, 7]"));
        }
        events_[static_cast<int>(evt)] &= ~(1u << id);
    }
    /// Returns the next free event id without taking it.
    template <HardEvent evt>
    TEventID FetchEventID()
    {
        return FetchEventID(evt);
    }
    /// Returns the next free event id without taking it.
    TEventID FetchEventID(HardEvent evt)
    {
        int e = static_cast<int>(evt);
        for (int i = 0; i < QUE_MAX_EVENT; ++i) {
            if (!(events_[e] & (1u << i))) return static_cast<TEventID>(i);
        }
        tessera_ascendc_cpu::Fail("TPipe::FetchEventID: all 8 event ids are in use");
    }
    /// Releases every buffer of this pipe (tensors and queues become unusable).
    void Destroy()
    {
        for (int b : mine_) core_->bufs[b].alive = false;
        mine_.clear();
        for (auto& u : used_) u = 0;
        for (auto& p : positionBuffers_) p = 0;
        totalBuffers_ = 0;
    }
    /// Same as Destroy, after which InitBuffer may be called again.
    void Reset() { Destroy(); }

private:
    void CheckPipe(const char* what)
    {
        if (core_ != &tessera_ascendc_cpu::Core()) {
            tessera_ascendc_cpu::Fail(tessera_ascendc_cpu::Str("TPipe::", what, ": TPipe was created by another core"));
        }
    }
    int Carve(Hardware hw, TPosition pos, uint32_t len, int qid, int index, const std::string& name)
    {
        using namespace tessera_ascendc_cpu;
        uint32_t aligned = (len + 31u) / 32u * 32u;
        uint32_t& used = used_[static_cast<int>(hw)];
        uint64_t total = static_cast<uint64_t>(used) + aligned;
        uint32_t cap = UserCapacity(hw);
        if (total > cap) {
            Fail(Str("TPipe::InitBuffer: ", name, ": ", HwName(hw), " over capacity: ", total,
                " bytes requested in total by this TPipe (", used, " already carved + ", aligned,
                "), limit ", cap, " bytes", CapacityNote(hw)));
        }
        if (++totalBuffers_ > 64) Fail(Str("TPipe::InitBuffer: ", name, ": more than 64 buffers in one TPipe"));
        BufferRec b;
        b.hw = hw;
        b.pos = pos;
        b.off = used;
        b.len = aligned;
        b.state = TBufState::FREE;
        b.gen = 0;
        b.queue = qid;
        b.index = index;
        b.alive = true;
        used = static_cast<uint32_t>(total);
        core_->bufs.push_back(b);
        int id = static_cast<int>(core_->bufs.size()) - 1;
        mine_.push_back(id);
        return id;
    }

    tessera_ascendc_cpu::CoreContext* core_;
    int id_ = 0;
    uint32_t used_[static_cast<int>(Hardware::MAX)] = {};
    int positionBuffers_[static_cast<int>(TPosition::MAX)] = {};
    int totalBuffers_ = 0;
    uint32_t events_[static_cast<int>(HardEvent::MAX)] = {};
    std::vector<int> mine_;
};

}  // namespace AscendC

#endif  // TESSERA_ASCENDC_CPU_TENSOR_H
