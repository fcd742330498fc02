// libFuzzer's entry point for programs with a main of their own (LLVM 11+). The symbol exists only when the
// program is linked with -sanitize=fuzzer; flava-fuzz calls it only in that build (FUZZING defined).
#ifndef FLAVA_FUZZ_DRIVER_H
#define FLAVA_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

typedef int (*flava_fuzz_callback)(const uint8_t *data, size_t size);
int LLVMFuzzerRunDriver(int *argc, char ***argv, flava_fuzz_callback callback);

#endif
