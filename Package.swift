// swift-tools-version:6.0
import PackageDescription

// Gantry takes no SwiftPM package dependencies: Foundation plus C system libraries.

// `scripts/sanitize.sh` sets GANTRY_SANITIZE: a sanitizer's runtime cannot be linked into a
// fully static executable, so there the small supervisor links like `gantry-shim-nss` (the
// script then copies the plain build's supervisors over the sanitized ones).
let nssShimLinkFlags = ["-static-stdlib", "-Xclang-linker", "-no-pie", "-Xclang-linker", "-static-libgcc", "-L", Context.packageDirectory + "/Sources/gantry-shim-nss/link"]
let shimLinkFlags = Context.environment["GANTRY_SANITIZE"] == nil ? ["-static-executable"] : nssShimLinkFlags
let package = Package(
    name: "Gantry",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gantry", targets: ["gantry"]),
        .executable(name: "gantry-bench", targets: ["gantry-bench"]),
        .executable(name: "gantry-shim", targets: ["gantry-shim"]),
        .executable(name: "gantry-shim-nss", targets: ["gantry-shim-nss"]),
        .executable(name: "fuzz-manifest", targets: ["fuzz-manifest"]),
        .executable(name: "fuzz-scheduler", targets: ["fuzz-scheduler"]),
    ],
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CShim"),
        // Headers only: libcurl is loaded when the Kubernetes client first needs it (see its shim.h).
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .target(name: "HTTPServer", dependencies: ["CMicroHTTPD"]),
        .target(name: "GantryAPI", linkerSettings: [.linkedLibrary("m")]),
        // The replica supervisor: Glibc only, so the small `gantry-shim` starts fast. It is
        // linked fully statically; `gantry-shim-nss` (Swift's libraries, libstdc++ and libgcc
        // static, the C library dynamic: see Sources/gantry-shim-nss/link) serves replicas
        // that run as another account, whose lookups need the system's NSS modules.
        .target(name: "GantryShim", dependencies: ["CShim"]),
        .executableTarget(name: "gantry-shim", dependencies: ["GantryShim"], linkerSettings: [.unsafeFlags(shimLinkFlags)]),
        .executableTarget(name: "gantry-shim-nss", dependencies: ["GantryShim"], exclude: ["link"], linkerSettings: [.unsafeFlags(nssShimLinkFlags)]),
        .target(name: "YAMLCodec", dependencies: ["GantryAPI", "CYAML"]),
        .target(name: "ControllerRuntime", dependencies: ["GantryAPI"]),
        .target(name: "KubeClient", dependencies: ["GantryAPI", "YAMLCodec", "CCurl"]),
        .target(name: "Scheduler", dependencies: ["GantryAPI"]),
        // An in-process, plain-HTTP stand-in for kube-apiserver, for tests and benchmarks.
        .target(name: "KubeTestServer", dependencies: ["GantryAPI"]),
        .target(name: "StateStore", dependencies: ["GantryAPI", "CSQLite", "YAMLCodec", "ControllerRuntime"]),
        .target(name: "DirectorySource", dependencies: ["GantryAPI", "YAMLCodec", "ControllerRuntime", "CShim"]),
        .target(name: "Controllers", dependencies: ["GantryAPI", "YAMLCodec", "ControllerRuntime", "StateStore", "DirectorySource", "Scheduler", "CShim", "GantryShim"]),
        .target(name: "KubeMode", dependencies: ["GantryAPI", "ControllerRuntime", "Controllers", "DirectorySource", "StateStore", "KubeClient"]),
        .target(name: "GantryServer", dependencies: ["GantryAPI", "YAMLCodec", "HTTPServer"]),
        .target(name: "GantryCLI", dependencies: ["GantryServer", "CShim", "GantryShim", "GantryAPI", "YAMLCodec", "StateStore", "ControllerRuntime", "DirectorySource", "Controllers", "KubeClient", "KubeMode", "HTTPServer"]),
        .executableTarget(name: "gantry", dependencies: ["GantryCLI", "GantryShim"]),
        .executableTarget(name: "gantry-bench", dependencies: ["GantryAPI", "YAMLCodec", "StateStore", "ControllerRuntime", "CSQLite", "Controllers", "Scheduler", "DirectorySource", "KubeTestServer", "KubeClient", "KubeMode"]),
        // Fuzz targets (`make fuzz`): the checks live in FuzzHarness, so the tests replay the
        // committed seed corpus through them; the executables are libFuzzer entries when built
        // with `-sanitize=fuzzer -DGANTRY_FUZZ`, otherwise corpus replayers.
        .target(name: "FuzzHarness", dependencies: ["GantryAPI", "YAMLCodec", "DirectorySource", "Scheduler"], path: "Fuzz/Harness"),
        .systemLibrary(name: "CFuzzer", path: "Fuzz/CFuzzer"),
        .executableTarget(name: "fuzz-manifest", dependencies: ["FuzzHarness", "CFuzzer"], path: "Fuzz/fuzz-manifest"),
        .executableTarget(name: "fuzz-scheduler", dependencies: ["FuzzHarness", "CFuzzer"], path: "Fuzz/fuzz-scheduler"),
        .testTarget(name: "GantryTests", dependencies: ["GantryShim", "GantryAPI", "YAMLCodec", "ControllerRuntime", "StateStore", "DirectorySource", "Controllers", "GantryCLI", "Scheduler", "FuzzHarness", "KubeClient", "KubeMode", "HTTPServer", "KubeTestServer", "GantryServer"]),
    ]
)
