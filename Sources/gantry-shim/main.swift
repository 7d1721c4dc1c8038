import Glibc
import GantryShim

// The replica supervisor as a small executable of its own: the Swift standard library
// linked statically and no Foundation, so it starts in about 3 ms (`gantry shim` is the same
// code inside the main binary, which starts in about 15 ms).
exit(Shim.main(CommandLine.arguments))
