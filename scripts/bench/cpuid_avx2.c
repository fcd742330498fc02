// An AVX2-only CPU, as every library in a process sees it through CPUID: a preload library for benchmarks
// (scripts/bench/model_bench.sh --avx2), so that a machine with AVX-512 can stand in for an AVX2-only one
// (an AMD EPYC Zen 3, say) for every runtime at once, ONNX Runtime included, which has no switch of its own
// (MLAS picks its kernels from CPUID).
//
// How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID, 0; the CPU flag `cpuid_fault`) makes every CPUID
// instruction of the thread, and of the threads it starts, raise SIGSEGV. The handler runs the real CPUID
// with faulting off for a moment, clears the AVX-512 (all of them), AVX-VNNI, AMX, AVX-IFMA, AVX-VNNI-INT8,
// AVX10 and GFNI bits, writes the registers into the interrupted context and steps over the instruction.
// The process's own SIGSEGV handlers (the Swift runtime's backtracer, Python's faulthandler) are kept:
// sigaction and signal are interposed, so they are recorded and every other fault is passed on to them.
// XGETBV is not trapped: the OS still enables the AVX-512 register state, which no library uses without the
// CPUID bits. The dynamic loader's own CPUID probe runs before this library's constructor, so glibc's string
// functions keep their AVX-512 forms unless GLIBC_TUNABLES masks them too (the benchmark script does).
//
//   cc -O2 -shared -fPIC -o cpuid_avx2.so scripts/bench/cpuid_avx2.c -ldl
//   LD_PRELOAD=$PWD/cpuid_avx2.so program ...      (fails loudly where the CPU has no CPUID faulting)
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static struct sigaction app_segv; // what the program asked for (SIG_DFL until it asks)

static void mask(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && sub == 0) {
        // EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31.
        *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        // ECX: VBMI 1, VBMI2 6, GFNI 8, VNNI 11, BITALG 12, VPOPCNTDQ 14.
        *c &= ~((1u << 1) | (1u << 6) | (1u << 8) | (1u << 11) | (1u << 12) | (1u << 14));
        // EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, AVX512-FP16 23, AMX-TILE 24, AMX-INT8 25.
        *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        // EAX: AVX-VNNI 4, AVX512-BF16 5, AMX-FP16 21, AVX-IFMA 23. EDX: AVX-VNNI-INT8 4, AVX-NE-CONVERT 5,
        // AVX-VNNI-INT16 10, AVX10 19.
        *a &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        *d &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));
    } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) {
        *a = *b = *c = *d = 0; // AMX tile and AVX10 information
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
        __cpuid_count(leaf, sub, a, b, c, d);
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
        mask(leaf, sub, &a, &b, &c, &d);
        r[REG_RAX] = a; r[REG_RBX] = b; r[REG_RCX] = c; r[REG_RDX] = d; // CPUID clears the upper halves
        r[REG_RIP] += 2;
        return;
    }
    // Not ours: the program's handler, or the default action (the fault repeats once this returns).
    if (app_segv.sa_flags & SA_SIGINFO) {
        app_segv.sa_sigaction(sig, info, context);
    } else if (app_segv.sa_handler == SIG_IGN) {
        return;
    } else if (app_segv.sa_handler == SIG_DFL) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction(SIGSEGV, &dfl, 0);
    } else {
        app_segv.sa_handler(sig);
    }
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV) return real_sigaction(sig, act, old);
    if (old) *old = app_segv;
    if (act) app_segv = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

__attribute__((constructor)) static void start(void) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    app_segv.sa_handler = SIG_DFL;
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = on_segv;
    act.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&act.sa_mask);
    if (real_sigaction(SIGSEGV, &act, 0) != 0 || syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "cpuid_avx2: this CPU or kernel has no CPUID faulting (arch_prctl ARCH_SET_CPUID)\n");
        _exit(2);
    }
}
