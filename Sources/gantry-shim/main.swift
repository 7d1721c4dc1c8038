import Glibc
import GantryShim

// The replica supervisor as a small executable of its own, linked fully statically (the Swift
// standard library and glibc: no dynamic loader, no relocations at start), so it starts in
// about half a millisecond of CPU. A static glibc cannot load NSS modules safely (a lookup
// that reaches libnss_systemd crashes it), so a replica with `--user` is handed to
// `gantry-shim-nss` by exec before anything else is done.
exit(Shim.main(CommandLine.arguments, lookUpAccounts: false))
