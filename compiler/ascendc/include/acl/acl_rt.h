// Tessera CPU build of the AscendCL subset: runtime (devices, streams, memory).
//
// Device memory comes from the same registry as AscendC::GmAlloc, so kernels launched with
// ICPU_RUN_KF can use it and every kernel access is range-checked against it. aclrtMalloc
// memory starts filled with 0xFF bytes (NaN for every float type), like uninitialised device
// memory; calls return AscendCL error codes (with a warning on stderr) instead of aborting.
#ifndef TESSERA_ASCENDC_CPU_ACL_RT_H
#define TESSERA_ASCENDC_CPU_ACL_RT_H

#include <set>

#include "acl_base.h"
#include "../tessera_ascendc_cpu/runtime.h"

typedef enum aclrtMemcpyKind {
    ACL_MEMCPY_HOST_TO_HOST,
    ACL_MEMCPY_HOST_TO_DEVICE,
    ACL_MEMCPY_DEVICE_TO_HOST,
    ACL_MEMCPY_DEVICE_TO_DEVICE,
    ACL_MEMCPY_DEFAULT,
    ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE,
    ACL_MEMCPY_INNER_DEVICE_TO_DEVICE,
    ACL_MEMCPY_INTER_DEVICE_TO_DEVICE,
} aclrtMemcpyKind;

typedef enum aclrtMemMallocPolicy {
    ACL_MEM_MALLOC_HUGE_FIRST,
    ACL_MEM_MALLOC_HUGE_ONLY,
    ACL_MEM_MALLOC_NORMAL_ONLY,
    ACL_MEM_MALLOC_HUGE_FIRST_P2P,
    ACL_MEM_MALLOC_HUGE_ONLY_P2P,
    ACL_MEM_MALLOC_NORMAL_ONLY_P2P,
    ACL_MEM_MALLOC_HUGE1G_ONLY,
    ACL_MEM_MALLOC_HUGE1G_ONLY_P2P,
    ACL_MEM_TYPE_LOW_BAND_WIDTH = 0x0100,
    ACL_MEM_TYPE_HIGH_BAND_WIDTH = 0x1000,
    ACL_MEM_ACCESS_USER_SPACE_READONLY = 0x100000U,
} aclrtMemMallocPolicy;

namespace tessera_ascendc_cpu {

/// Host-side AscendCL state.
struct AclState {
    std::mutex mu;
    bool initialised = false;
    int32_t device = -1;
    std::set<void*> streams;
    std::set<void*> contexts;
};

inline AclState& Acl()
{
    static AclState s;
    return s;
}

/// Returns true if [p, p + bytes) lies in one device allocation; else sets *why.
inline bool DeviceRangeOk(const void* p, size_t bytes, std::string* why)
{
    uintptr_t base = 0;
    Allocation a{0, AllocKind::kGmAlloc};
    if (p == nullptr) {
        *why = "null pointer";
        return false;
    }
    if (!FindAllocation(p, &base, &a) || a.kind == AllocKind::kAclHost ||
        (bytes > 0 && reinterpret_cast<uintptr_t>(p) == base + a.size)) {
        *why = Str(p, " is not device memory from aclrtMalloc / AscendC::GmAlloc");
        return false;
    }
    uint64_t off = reinterpret_cast<uintptr_t>(p) - base;
    if (off + bytes > a.size) {
        *why = Str("[", p, ", +", bytes, " bytes) runs past the end of its ", a.size, "-byte allocation");
        return false;
    }
    return true;
}

inline aclError AclFail(aclError code, const std::string& msg)
{
    Warn(Str(msg, " -> error ", code));
    return code;
}

}  // namespace tessera_ascendc_cpu

extern "C" {

/// Selects the (single) emulated device 0.
inline aclError aclrtSetDevice(int32_t deviceId)
{
    if (deviceId != 0) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_DEVICE,
            tessera_ascendc_cpu::Str("aclrtSetDevice(", deviceId, "): the CPU build emulates one device, id 0"));
    }
    tessera_ascendc_cpu::Acl().device = 0;
    return ACL_SUCCESS;
}

/// Releases the device.
inline aclError aclrtResetDevice(int32_t deviceId)
{
    if (deviceId != 0) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_DEVICE,
            tessera_ascendc_cpu::Str("aclrtResetDevice(", deviceId, "): no such device"));
    }
    tessera_ascendc_cpu::Acl().device = -1;
    return ACL_SUCCESS;
}

/// One emulated device.
inline aclError aclrtGetDeviceCount(uint32_t* count)
{
    if (count == nullptr) return ACL_ERROR_INVALID_PARAM;
    *count = 1;
    return ACL_SUCCESS;
}

/// Kernels run synchronously in ICPU_RUN_KF: nothing to wait for.
inline aclError aclrtSynchronizeDevice(void) { return ACL_SUCCESS; }

/// Creates a context handle.
inline aclError aclrtCreateContext(aclrtContext* context, int32_t deviceId)
{
    if (context == nullptr || deviceId != 0) return ACL_ERROR_INVALID_PARAM;
    *context = new int(0);
    std::lock_guard<std::mutex> lk(tessera_ascendc_cpu::Acl().mu);
    tessera_ascendc_cpu::Acl().contexts.insert(*context);
    return ACL_SUCCESS;
}

/// Destroys a context handle.
inline aclError aclrtDestroyContext(aclrtContext context)
{
    auto& s = tessera_ascendc_cpu::Acl();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.contexts.erase(context) == 0) return ACL_ERROR_INVALID_PARAM;
    delete static_cast<int*>(context);
    return ACL_SUCCESS;
}

/// Creates a stream handle.
inline aclError aclrtCreateStream(aclrtStream* stream)
{
    if (stream == nullptr) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_PARAM, "aclrtCreateStream(nullptr)");
    }
    *stream = new int(0);
    std::lock_guard<std::mutex> lk(tessera_ascendc_cpu::Acl().mu);
    tessera_ascendc_cpu::Acl().streams.insert(*stream);
    return ACL_SUCCESS;
}

/// Destroys a stream handle.
inline aclError aclrtDestroyStream(aclrtStream stream)
{
    auto& s = tessera_ascendc_cpu::Acl();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.streams.erase(stream) == 0) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_PARAM,
            tessera_ascendc_cpu::Str("aclrtDestroyStream(", stream, "): not a live stream"));
    }
    delete static_cast<int*>(stream);
    return ACL_SUCCESS;
}

/// Kernels run synchronously in ICPU_RUN_KF: checks the handle only.
inline aclError aclrtSynchronizeStream(aclrtStream stream)
{
    auto& s = tessera_ascendc_cpu::Acl();
    std::lock_guard<std::mutex> lk(s.mu);
    if (stream != nullptr && s.streams.count(stream) == 0) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_PARAM,
            tessera_ascendc_cpu::Str("aclrtSynchronizeStream(", stream, "): not a live stream"));
    }
    return ACL_SUCCESS;
}

/// Allocates device memory (filled with 0xFF bytes, i.e. garbage).
inline aclError aclrtMalloc(void** devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    (void)policy;
    if (devPtr == nullptr || size == 0) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_PARAM,
            tessera_ascendc_cpu::Str("aclrtMalloc(size=", size, "): null output pointer or zero size"));
    }
    *devPtr = tessera_ascendc_cpu::RegisteredAlloc(size, tessera_ascendc_cpu::AllocKind::kAclDevice, 0xFF);
    return *devPtr == nullptr ? ACL_ERROR_BAD_ALLOC : ACL_SUCCESS;
}

/// Frees device memory.
inline aclError aclrtFree(void* devPtr)
{
    if (devPtr == nullptr || !tessera_ascendc_cpu::RegisteredFree(devPtr, true)) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_PARAM,
            tessera_ascendc_cpu::Str("aclrtFree(", devPtr, "): not a live aclrtMalloc pointer"));
    }
    return ACL_SUCCESS;
}

/// Allocates host memory (zero-filled).
inline aclError aclrtMallocHost(void** hostPtr, size_t size)
{
    if (hostPtr == nullptr || size == 0) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_PARAM,
            tessera_ascendc_cpu::Str("aclrtMallocHost(size=", size, "): null output pointer or zero size"));
    }
    *hostPtr = tessera_ascendc_cpu::RegisteredAlloc(size, tessera_ascendc_cpu::AllocKind::kAclHost, 0);
    return *hostPtr == nullptr ? ACL_ERROR_BAD_ALLOC : ACL_SUCCESS;
}

/// Frees host memory.
inline aclError aclrtFreeHost(void* hostPtr)
{
    if (hostPtr == nullptr || !tessera_ascendc_cpu::RegisteredFree(hostPtr, false)) {
        return tessera_ascendc_cpu::AclFail(ACL_ERROR_INVALID_PARAM,
            tessera_ascendc_cpu::Str("aclrtFreeHost(", hostPtr, "): not a live aclrtMallocHost pointer"));
    }
    return ACL_SUCCESS;
}

/// Copies memory; the device side(s) of `kind` must be device memory.
inline aclError aclrtMemcpy(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind)
{
    using namespace tessera_ascendc_cpu;
    if (count > destMax) {
        return AclFail(ACL_ERROR_INVALID_PARAM, Str("aclrtMemcpy: count ", count, " > destMax ", destMax));
    }
    if (count == 0) return ACL_SUCCESS;
    if (dst == nullptr || src == nullptr) return AclFail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: null pointer");
    std::string why;
    bool dstDev = kind == ACL_MEMCPY_HOST_TO_DEVICE || kind == ACL_MEMCPY_DEVICE_TO_DEVICE;
    bool srcDev = kind == ACL_MEMCPY_DEVICE_TO_HOST || kind == ACL_MEMCPY_DEVICE_TO_DEVICE;
    if (kind != ACL_MEMCPY_HOST_TO_HOST && kind != ACL_MEMCPY_HOST_TO_DEVICE && kind != ACL_MEMCPY_DEVICE_TO_HOST &&
        kind != ACL_MEMCPY_DEVICE_TO_DEVICE && kind != ACL_MEMCPY_DEFAULT) {
        return AclFail(ACL_ERROR_INVALID_PARAM, Str("aclrtMemcpy: kind ", int(kind), " not supported by the CPU build"));
    }
    if (dstDev && !DeviceRangeOk(dst, count, &why)) return AclFail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy dst: " + why);
    if (srcDev && !DeviceRangeOk(src, count, &why)) return AclFail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy src: " + why);
    std::memmove(dst, src, count);
    return ACL_SUCCESS;
}

/// Copies memory (synchronously on the CPU).
inline aclError aclrtMemcpyAsync(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind,
    aclrtStream stream)
{
    aclError e = aclrtSynchronizeStream(stream);
    if (e != ACL_SUCCESS) return e;
    return aclrtMemcpy(dst, destMax, src, count, kind);
}

/// Fills device memory with a byte value.
inline aclError aclrtMemset(void* devPtr, size_t maxCount, int32_t value, size_t count)
{
    using namespace tessera_ascendc_cpu;
    if (count > maxCount) return AclFail(ACL_ERROR_INVALID_PARAM, Str("aclrtMemset: count ", count, " > maxCount"));
    if (count == 0) return ACL_SUCCESS;
    std::string why;
    if (!DeviceRangeOk(devPtr, count, &why)) return AclFail(ACL_ERROR_INVALID_PARAM, "aclrtMemset: " + why);
    std::memset(devPtr, value, count);
    return ACL_SUCCESS;
}

/// IEEE half bits -> float.
inline float aclFloat16ToFloat(aclFloat16 value)
{
    return static_cast<float>(tessera_ascendc_cpu::HalfBitsToDouble(value));
}

/// float -> IEEE half bits (round to nearest even).
inline aclFloat16 aclFloatToFloat16(float value) { return tessera_ascendc_cpu::DoubleToHalfBits(value); }

}  // extern "C"

#endif  // TESSERA_ASCENDC_CPU_ACL_RT_H
