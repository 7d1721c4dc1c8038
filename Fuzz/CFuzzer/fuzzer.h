// libFuzzer's driver entry (compiler-rt's FuzzerInterface.h). Only referenced when the fuzz
// executables are built with -sanitize=fuzzer, which links libFuzzer; declared here because
// SwiftPM gives every executable its own `main` (renamed to <module>_main), so libFuzzer's
// `main` cannot be used and ours calls the driver instead.
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
