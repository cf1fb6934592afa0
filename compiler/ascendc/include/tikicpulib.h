// Tessera CPU build of the Ascend C API subset: CANN-compatible name for the CPU-debug
// framework header (ICPU_RUN_KF, AscendC::GmAlloc/GmFree, AscendC::SetKernelMode).
#ifndef TESSERA_ASCENDC_CPU_TIKICPULIB_H
#define TESSERA_ASCENDC_CPU_TIKICPULIB_H

#include "kernel_operator.h"

#endif  // TESSERA_ASCENDC_CPU_TIKICPULIB_H
