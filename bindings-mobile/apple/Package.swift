// swift-tools-version:5.9
// The FundCore Swift package: the generated Swift sources (module FundCore) over the Rust
// engine compiled into FundCoreFFI.xcframework. Both are produced on a Mac by
// bindings-mobile/scripts/build-xcframework.sh; see bindings-mobile/README.md.
import PackageDescription

let package = Package(
    name: "FundCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "FundCore", targets: ["FundCore"]),
    ],
    targets: [
        .binaryTarget(name: "FundCoreFFI", path: "FundCoreFFI.xcframework"),
        .target(
            name: "FundCore",
            dependencies: ["FundCoreFFI"],
            path: "Sources/FundCore"
        ),
    ]
)
