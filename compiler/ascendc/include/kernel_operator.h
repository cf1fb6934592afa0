// Tessera CPU build of the Ascend C API subset: the kernel-side header.
//
// Kernels written against CANN 8.x (`#include "kernel_operator.h"`, namespace AscendC) compile
// unchanged with `g++ -std=c++17 -DASCENDC_CPU_DEBUG -I<this directory>` and run on the CPU
// with ICPU_RUN_KF (see acl/acl.h). Only the subset Tessera emits is provided; misuse that
// would misbehave on hardware aborts with "[TESSERA-ASCEND-CPU ERROR] ...".
#ifndef TESSERA_ASCENDC_CPU_KERNEL_OPERATOR_H
#define TESSERA_ASCENDC_CPU_KERNEL_OPERATOR_H

#ifndef ASCENDC_CPU_DEBUG
#error "this is the Tessera CPU build of Ascend C: compile with -DASCENDC_CPU_DEBUG (device builds use CANN's headers)"
#endif

#include "tessera_ascendc_cpu/common.h"
#include "tessera_ascendc_cpu/runtime.h"
#include "tessera_ascendc_cpu/tensor.h"
#include "tessera_ascendc_cpu/data_copy.h"
#include "tessera_ascendc_cpu/vector.h"
#include "tessera_ascendc_cpu/cube.h"

#endif  // TESSERA_ASCENDC_CPU_KERNEL_OPERATOR_H
