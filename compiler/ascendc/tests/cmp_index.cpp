// CompareScalar, Compare on int32 (EQ), CreateVecIndex, and their misuse.
// argv[1]: ok | cmp_count (Compare over 100 floats: 400 bytes, not whole 256-byte repeats) |
//   cmps_int_lt (CompareScalar LT on int32_t: A2 compares int32 for EQ only) |
//   cmps_dst (CompareScalar into an int8_t mask: uint8_t only) |
//   mask_small (Compare of 128 floats into a 8-byte mask tensor: needs 16 bytes) |
//   index_block (CreateVecIndex of 4 floats into a 4-float tensor: the first block is always
//   written whole) | index_dtype (CreateVecIndex on uint32_t)
#include <cstring>
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

constexpr int32_t N = 128;

// out: [0, N) CompareScalar(x < 0.25) as 0/1; [N, 2N) CompareScalar(x >= -0.5);
// [2N, 3N) int32 Compare EQ (i == j) as 0/1; [3N, 4N) CreateVecIndex<int32_t>(-7) as float;
// [4N, 4N + 8) CreateVecIndex<float>(2.5) over 5 elements (the whole first block is written).
extern "C" __global__ __aicore__ void cmp_index_kernel(GM_ADDR x, GM_ADDR out, uint32_t mode)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    AscendC::TPipe pipe;
    AscendC::TBuf<AscendC::TPosition::VECCALC> xb, rb, mb, ib, jb, sb;
    AscendC::GlobalTensor<float> xGm, outGm;
    xGm.SetGlobalBuffer((__gm__ float*)x, N);
    outGm.SetGlobalBuffer((__gm__ float*)out, 4 * N + 8);
    pipe.InitBuffer(xb, N * sizeof(float));
    pipe.InitBuffer(rb, N * sizeof(float));
    pipe.InitBuffer(mb, 64);
    pipe.InitBuffer(ib, N * sizeof(int32_t));
    pipe.InitBuffer(jb, N * sizeof(int32_t));
    pipe.InitBuffer(sb, 32);
    AscendC::LocalTensor<float> xl = xb.Get<float>();
    AscendC::LocalTensor<float> r = rb.Get<float>();
    AscendC::LocalTensor<uint8_t> m = mb.Get<uint8_t>();
    AscendC::LocalTensor<int32_t> iv = ib.Get<int32_t>();
    AscendC::LocalTensor<int32_t> jv = jb.Get<int32_t>();
    AscendC::DataCopy(xl, xGm, N);
    AscendC::SetFlag<AscendC::HardEvent::MTE2_V>(EVENT_ID0);
    AscendC::WaitFlag<AscendC::HardEvent::MTE2_V>(EVENT_ID0);
    switch (mode) {
        case 1: AscendC::Compare(m, xl, r, AscendC::CMPMODE::LT, 100); return;
        case 2: AscendC::CompareScalar(m, iv, 3, AscendC::CMPMODE::LT, N); return;
        case 3: {
            AscendC::LocalTensor<int8_t> m8 = m.ReinterpretCast<int8_t>();
            AscendC::CompareScalar(m8, xl, 0.0f, AscendC::CMPMODE::LT, N);
            return;
        }
        case 4: AscendC::Compare(mb.Get<uint8_t>(8), xl, r, AscendC::CMPMODE::LT, N); return;
        case 5: AscendC::CreateVecIndex(sb.Get<float>(4), 0.0f, 4); return;
        case 6: AscendC::CreateVecIndex(sb.Get<uint32_t>(), 0u, 8); return;
        default: break;
    }
    auto out01 = [&](int32_t seg) {
        AscendC::Duplicate(r, 1.0f, N);
        AscendC::PipeBarrier<PIPE_V>();
        AscendC::Select(r, m, r, 0.0f, AscendC::SELMODE::VSEL_TENSOR_SCALAR_MODE, N);
        AscendC::SetFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
        AscendC::WaitFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
        AscendC::DataCopy(outGm[seg * N], r, N);
        AscendC::SetFlag<AscendC::HardEvent::MTE3_V>(EVENT_ID0);
        AscendC::WaitFlag<AscendC::HardEvent::MTE3_V>(EVENT_ID0);
    };
    AscendC::CompareScalar(m, xl, 0.25f, AscendC::CMPMODE::LT, N);
    AscendC::PipeBarrier<PIPE_V>();
    out01(0);
    AscendC::CompareScalar(m, xl, -0.5f, AscendC::CMPMODE::GE, N);
    AscendC::PipeBarrier<PIPE_V>();
    out01(1);
    // i = index, j = i with every third element changed
    AscendC::CreateVecIndex(iv, static_cast<int32_t>(0), N);
    AscendC::PipeBarrier<PIPE_V>();
    AscendC::Muls(jv, iv, static_cast<int32_t>(1), N);
    AscendC::PipeBarrier<PIPE_V>();
    for (int32_t k = 0; k < N; k += 3) jv.SetValue(k, -1);
    AscendC::Compare(m, iv, jv, AscendC::CMPMODE::EQ, N);
    AscendC::PipeBarrier<PIPE_V>();
    out01(2);
    AscendC::CreateVecIndex(iv, static_cast<int32_t>(-7), N);
    AscendC::PipeBarrier<PIPE_V>();
    AscendC::Cast(r, iv, AscendC::RoundMode::CAST_NONE, N);
    AscendC::SetFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
    AscendC::WaitFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
    AscendC::DataCopy(outGm[3 * N], r, N);
    AscendC::LocalTensor<float> s = sb.Get<float>();
    AscendC::Duplicate(s, -1.0f, 8);
    AscendC::PipeBarrier<PIPE_V>();
    AscendC::CreateVecIndex(s, 2.5f, 5);
    AscendC::SetFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
    AscendC::WaitFlag<AscendC::HardEvent::V_MTE3>(EVENT_ID0);
    AscendC::DataCopy(outGm[4 * N], s, 8);
}

int main(int argc, char** argv)
{
    EXPECT(argc > 1, "usage: cmp_index ok|cmp_count|cmps_int_lt|cmps_dst|mask_small|index_block|index_dtype");
    const char* names[] = {"ok", "cmp_count", "cmps_int_lt", "cmps_dst", "mask_small", "index_block", "index_dtype"};
    uint32_t mode = 99;
    for (uint32_t i = 0; i < 7; ++i) {
        if (std::strcmp(argv[1], names[i]) == 0) mode = i;
    }
    EXPECT(mode != 99, "unknown case %s", argv[1]);
    CHECK_ACL(aclInit(nullptr));
    const size_t outLen = 4 * N + 8;
    std::vector<float> hx(N), hout(outLen);
    TestRng rng(7);
    for (auto& v : hx) v = static_cast<float>(rng.Next(-1.0, 1.0));
    hx[3] = 0.25f;  // ties with the scalars
    hx[4] = -0.5f;
    uint8_t *x, *out;
    CHECK_ACL(aclrtMalloc((void**)&x, N * sizeof(float), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&out, outLen * sizeof(float), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemcpy(x, N * sizeof(float), hx.data(), N * sizeof(float), ACL_MEMCPY_HOST_TO_DEVICE));
#ifdef ASCENDC_CPU_DEBUG
    AscendC::SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(cmp_index_kernel, 1, x, out, mode);
#else
    cmp_index_kernel<<<1, nullptr, nullptr>>>(x, out, mode);
#endif
    CHECK_ACL(aclrtMemcpy(hout.data(), outLen * sizeof(float), out, outLen * sizeof(float),
        ACL_MEMCPY_DEVICE_TO_HOST));
    for (int32_t i = 0; i < N; ++i) {
        EXPECT(hout[i] == (hx[i] < 0.25f ? 1.0f : 0.0f), "CompareScalar LT [%d]", i);
        EXPECT(hout[N + i] == (hx[i] >= -0.5f ? 1.0f : 0.0f), "CompareScalar GE [%d]", i);
        EXPECT(hout[2 * N + i] == (i % 3 == 0 ? 0.0f : 1.0f), "Compare int32 EQ [%d]", i);
        EXPECT(hout[3 * N + i] == static_cast<float>(i - 7), "CreateVecIndex int32 [%d]", i);
    }
    for (int32_t i = 0; i < 8; ++i) {
        EXPECT(hout[4 * N + i] == 2.5f + static_cast<float>(i), "CreateVecIndex float block [%d]", i);
    }
    CHECK_ACL(aclrtFree(x));
    CHECK_ACL(aclrtFree(out));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
