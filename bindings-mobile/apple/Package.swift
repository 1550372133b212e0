// swift-tools-version:5.9
// The FundCore Swift package: the generated Swift sources (module FundCore) over the Rust
// engine compiled into FundCoreFFI.xcframework, downloaded from the release named in the URL.
// On a Mac: bindings-mobile/scripts/build-xcframework.sh builds both, then
// bindings-mobile/scripts/package-xcframework.sh zips the XCFramework and writes the zip's
// SHA-256 below. The version in the URL is the crate's. See bindings-mobile/README.md.
import PackageDescription

let package = Package(
    name: "FundCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "FundCore", targets: ["FundCore"]),
    ],
    targets: [
        .binaryTarget(
            name: "FundCoreFFI",
            url: "https://github.com/fundcore/fundcore/releases/download/v0.1.0/FundCoreFFI.xcframework.zip",
            checksum: "0000000000000000000000000000000000000000000000000000000000000000"
        ),
        .target(
            name: "FundCore",
            dependencies: ["FundCoreFFI"],
            path: "Sources/FundCore"
        ),
    ]
)
