// Alternative spellings generated code may use (braced parameter lists, TQueBind, QuePosition,
// TPosition::LCM, TBuf::GetWithOffset, ReinterpretCast, LoadData2dParams, legacy DataCopyPad
// structs, Fixpipe with CFG_NZ, TPipe event ids, AscendCL extras), each with a result check.
#include "acl/acl.h"
#include "kernel_operator.h"
#ifdef ASCENDC_CPU_DEBUG
#include "tikicpulib.h"
#endif
#include "test_common.h"

using namespace AscendC;

extern "C" __global__ __aicore__ void spellings_vec(GM_ADDR x, GM_ADDR y)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    TPipe pipe;
    TQueBind<TPosition::VECIN, TPosition::VECOUT, 1> bind;
    TBuf<TPosition::LCM> scratch;
    TQue<QuePosition::VECOUT, 2> out;
    GlobalTensor<float> xGm, yGm;
    xGm.SetGlobalBuffer((__gm__ float*)x, 40);
    yGm.SetGlobalBuffer((__gm__ float*)y, 64);
    pipe.InitBuffer(bind, 1, 64 * sizeof(float));
    pipe.InitBuffer(scratch, 128 * sizeof(float));
    pipe.InitBuffer(out, 2, 64 * sizeof(float));
    // braced DataCopyExtParams / DataCopyPadExtParams, 5 rows of 8 floats with left padding 0
    LocalTensor<float> t = bind.AllocTensor<float>();
    DataCopyPad(t, xGm, {5, 8 * sizeof(float), 0, 0, 0}, {false, 0, 0, 0});
    bind.EnQue(t);
    LocalTensor<float> u = bind.DeQue<float>();
    // legacy braced DataCopyParams (blockLen in bytes) with a UB-side gap of one block
    LocalTensor<float> o = out.AllocTensor<float>();
    Duplicate(o, -1.0f, 64);
    PipeBarrier<PIPE_V>();
    DataCopy(o, u, {5, 1, 0, 0});
    LocalTensor<float> w = scratch.GetWithOffset<float>(64, 256);
    Muls(w, o, 2.0f, 40);
    LocalTensor<uint32_t> bits = w.ReinterpretCast<uint32_t>();
    uint32_t b0 = bits.GetValue(0);
    o.SetValue(40, static_cast<float>(b0 == 0x40000000u ? 1 : 0));  // 2 * x[0] with x[0] = 1
    out.EnQue(o);
    LocalTensor<float> r = out.DeQue<float>();
    DataCopyPad(yGm, r, {1, 41 * sizeof(float), 0, 0});  // legacy DataCopyParams UB -> GM
    out.FreeTensor(r);
    bind.FreeTensor(u);
    TEventID ev = pipe.FetchEventID(HardEvent::V_MTE3);
    SetFlag<HardEvent::V_MTE3>(ev);
    WaitFlag<HardEvent::V_MTE3>(ev);
    TEventID ev2 = pipe.AllocEventID<HardEvent::MTE2_V>();
    pipe.ReleaseEventID<HardEvent::MTE2_V>(ev2);
    pipe.Destroy();
}

// 16 x 16 x 16 half matmul written with LoadData2dParams fields and a Fixpipe in NZ layout
extern "C" __global__ __aicore__ void spellings_cube(GM_ADDR a, GM_ADDR b, GM_ADDR c)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
    TPipe pipe;
    TBuf<TPosition::A1> a1Buf;
    TBuf<TPosition::B1> b1Buf;
    TBuf<TPosition::A2> a2Buf;
    TBuf<TPosition::B2> b2Buf;
    TBuf<TPosition::CO1> c1Buf;
    pipe.InitBuffer(a1Buf, 512);
    pipe.InitBuffer(b1Buf, 512);
    pipe.InitBuffer(a2Buf, 512);
    pipe.InitBuffer(b2Buf, 512);
    pipe.InitBuffer(c1Buf, 1024);
    GlobalTensor<half> aGm, bGm;
    GlobalTensor<float> cGm;
    aGm.SetGlobalBuffer((__gm__ half*)a, 256);
    bGm.SetGlobalBuffer((__gm__ half*)b, 256);
    cGm.SetGlobalBuffer((__gm__ float*)c, 256);
    LocalTensor<half> a1 = a1Buf.Get<half>(), b1 = b1Buf.Get<half>();
    LocalTensor<half> a2 = a2Buf.Get<half>(), b2 = b2Buf.Get<half>();
    LocalTensor<float> c1 = c1Buf.Get<float>();
    Nd2NzParams nd;
    nd.ndNum = 1;
    nd.nValue = 16;
    nd.dValue = 16;
    nd.srcDValue = 16;
    nd.dstNzC0Stride = 16;
    nd.dstNzNStride = 1;
    DataCopy(a1, aGm, nd);
    DataCopy(b1, bGm, nd);
    SetFlag<HardEvent::MTE2_MTE1>(EVENT_ID0);
    WaitFlag<HardEvent::MTE2_MTE1>(EVENT_ID0);
    LoadData2dParams lp;
    lp.repeatTimes = 1;
    LoadData(a2, a1, lp);
    lp.ifTranspose = true;
    LoadData(b2, b1, lp);
    SetFlag<HardEvent::MTE1_M>(EVENT_ID1);
    WaitFlag<HardEvent::MTE1_M>(EVENT_ID1);
    MmadParams mp;
    mp.m = 16;
    mp.n = 16;
    mp.k = 16;
    Mmad(c1, a2, b2, mp);
    SetFlag<HardEvent::M_FIX>(EVENT_ID0);
    WaitFlag<HardEvent::M_FIX>(EVENT_ID0);
    FixpipeParamsV220 fp;
    fp.nSize = 16;
    fp.mSize = 16;
    fp.srcStride = 16;
    fp.dstStride = 2;  // NZ output: 16 floats per fractal row = 2 blocks; one column block
    Fixpipe<float, float, CFG_NZ>(cGm, c1, fp);
}

int main()
{
    CHECK_ACL(aclInit(nullptr));
    CHECK_ACL(aclrtSetDevice(0));
    aclrtStream stream;
    CHECK_ACL(aclrtCreateStream(&stream));
    float xh[40];
    for (int i = 0; i < 40; ++i) xh[i] = static_cast<float>(i + 1);
    uint8_t *x, *y;
    CHECK_ACL(aclrtMalloc((void**)&x, sizeof(xh), ACL_MEM_MALLOC_NORMAL_ONLY));
    CHECK_ACL(aclrtMalloc((void**)&y, 64 * sizeof(float), ACL_MEM_MALLOC_NORMAL_ONLY));
    CHECK_ACL(aclrtMemcpyAsync(x, sizeof(xh), xh, sizeof(xh), ACL_MEMCPY_HOST_TO_DEVICE, stream));
    CHECK_ACL(aclrtMemset(y, 64 * sizeof(float), 0, 64 * sizeof(float)));
#ifdef ASCENDC_CPU_DEBUG
    SetKernelMode(KernelMode::AIV_MODE);
    ICPU_RUN_KF(spellings_vec, 1, x, y);
#else
    spellings_vec<<<1, nullptr, stream>>>(x, y);
#endif
    CHECK_ACL(aclrtSynchronizeStream(stream));
    float yh[64];
    CHECK_ACL(aclrtMemcpy(yh, sizeof(yh), y, sizeof(yh), ACL_MEMCPY_DEVICE_TO_HOST));
    for (int i = 0; i < 40; ++i) EXPECT(yh[i] == xh[i], "y[%d] = %g, want %g", i, yh[i], xh[i]);
    EXPECT(yh[40] == 1.0f, "ReinterpretCast bits check");
    EXPECT(yh[41] == 0.0f, "DataCopyPad wrote past 41 floats");

    // cube: A = I (16 x 16), B = ramp; C (NZ, one fractal) must equal B
    half ah[256], bh[256];
    for (int i = 0; i < 256; ++i) {
        ah[i] = half(static_cast<float>(i / 16 == i % 16 ? 1 : 0));
        bh[i] = half(static_cast<float>(i % 37) * 0.25f);
    }
    uint8_t *a, *b, *c;
    CHECK_ACL(aclrtMalloc((void**)&a, sizeof(ah), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&b, sizeof(bh), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMalloc((void**)&c, 256 * sizeof(float), ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_ACL(aclrtMemcpy(a, sizeof(ah), ah, sizeof(ah), ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_ACL(aclrtMemcpy(b, sizeof(bh), bh, sizeof(bh), ACL_MEMCPY_HOST_TO_DEVICE));
#ifdef ASCENDC_CPU_DEBUG
    SetKernelMode(KernelMode::AIC_MODE);
    ICPU_RUN_KF(spellings_cube, 1, a, b, c);
#else
    spellings_cube<<<1, nullptr, stream>>>(a, b, c);
#endif
    float ch[256];
    CHECK_ACL(aclrtMemcpy(ch, sizeof(ch), c, sizeof(ch), ACL_MEMCPY_DEVICE_TO_HOST));
    for (int i = 0; i < 256; ++i) EXPECT(ch[i] == static_cast<float>(bh[i]), "C[%d] = %g", i, ch[i]);
    EXPECT(aclFloat16ToFloat(aclFloatToFloat16(0.1f)) == static_cast<float>(half(0.1f)), "aclFloat16 helpers");
    CHECK_ACL(aclrtFree(a));
    CHECK_ACL(aclrtFree(b));
    CHECK_ACL(aclrtFree(c));
    CHECK_ACL(aclrtFree(x));
    CHECK_ACL(aclrtFree(y));
    CHECK_ACL(aclrtDestroyStream(stream));
    CHECK_ACL(aclrtResetDevice(0));
    CHECK_ACL(aclFinalize());
    std::printf("PASS\n");
    return 0;
}
