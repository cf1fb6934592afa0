// Tessera CPU build of the AscendCL subset (host side), plus the CPU-debug launch surface:
// ICPU_RUN_KF(func, blockDim, args...), AscendC::GmAlloc / GmFree, AscendC::SetKernelMode,
// KernelMode.
#ifndef TESSERA_ASCENDC_CPU_ACL_H
#define TESSERA_ASCENDC_CPU_ACL_H

#include "acl_base.h"
#include "acl_rt.h"

extern "C" {

/// Initialises AscendCL (a second call without aclFinalize returns ACL_ERROR_REPEAT_INITIALIZE).
inline aclError aclInit(const char* configPath)
{
    (void)configPath;
    auto& s = tessera_ascendc_cpu::Acl();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.initialised) return ACL_ERROR_REPEAT_INITIALIZE;
    s.initialised = true;
    return ACL_SUCCESS;
}

/// Finalises AscendCL.
inline aclError aclFinalize()
{
    auto& s = tessera_ascendc_cpu::Acl();
    std::lock_guard<std::mutex> lk(s.mu);
    if (!s.initialised) return ACL_ERROR_REPEAT_FINALIZE;
    s.initialised = false;
    return ACL_SUCCESS;
}

}  // extern "C"

#endif  // TESSERA_ASCENDC_CPU_ACL_H
