// Shared helpers of the CPU-build test programs: deterministic data, comparisons, ACL checks.
#ifndef TESSERA_ASCENDC_TEST_COMMON_H
#define TESSERA_ASCENDC_TEST_COMMON_H

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK_ACL(expr)                                                                   \
    do {                                                                                  \
        aclError err_ = (expr);                                                           \
        if (err_ != ACL_SUCCESS) {                                                        \
            std::fprintf(stderr, "TEST FAILURE: %s returned %d\n", #expr, (int)err_);     \
            std::exit(1);                                                                 \
        }                                                                                 \
    } while (0)

#define EXPECT(cond, ...)                                                                 \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "TEST FAILURE: %s: ", #cond);                            \
            std::fprintf(stderr, __VA_ARGS__);                                            \
            std::fprintf(stderr, "\n");                                                   \
            std::exit(1);                                                                 \
        }                                                                                 \
    } while (0)

// Deterministic pseudo-random values in [lo, hi).
struct TestRng {
    uint64_t s;
    explicit TestRng(uint64_t seed) : s(seed * 2862933555777941757ULL + 3037000493ULL) {}
    double Next(double lo, double hi)
    {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        return lo + (hi - lo) * static_cast<double>(s >> 11) / 9007199254740992.0;
    }
};

#endif  // TESSERA_ASCENDC_TEST_COMMON_H
