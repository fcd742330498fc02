// Forcing a kernel path from the environment (FLAVA_FLOAT_KERNEL, FLAVA_INT8_KERNEL), shared by the float kernels
// (flava_kernels.c) and the int8 products (flava_qgemm.c).
#ifndef FLAVA_DISPATCH_H
#define FLAVA_DISPATCH_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The level variable `var` names (names[i] is level i) when the CPU has it (≤ best); otherwise, or when it names
// none, `best`, with a one-line warning on stderr. Unset: `best`.
static inline int flava_forced_level(const char *var, const char *const *names, int count, int best) {
    const char *env = getenv(var);
    if (!env) return best;
    int want = -1;
    for (int i = 0; i < count; i++) if (strcmp(env, names[i]) == 0) want = i;
    if (want >= 0 && want <= best) return want;
    char why[160] = "not available on this CPU";
    if (want < 0) {
        size_t used = (size_t)snprintf(why, sizeof why, "not ");
        for (int i = 0; i < count && used < sizeof why; i++)
            used += (size_t)snprintf(why + used, sizeof why - used, "%s%s", names[i],
                                     i + 2 < count ? ", " : (i + 1 < count ? " or " : ""));
    }
    fprintf(stderr, "warning: %s=%s is %s; using %s\n", var, env, why, names[best]);
    return best;
}
#endif
