import Glibc
import GantryShim

// The replica supervisor for replicas that run as another account (`--user`): the same code
// as `gantry-shim`, with the Swift standard library linked statically but the C library
// dynamic, so that account lookups go through the system's NSS modules. `gantry-shim` execs
// it (same process, same pid and start time) when it is given `--user`.
exit(Shim.main(CommandLine.arguments))
