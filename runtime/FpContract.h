// FpContract.h — included first by runtime sources whose floating-point
// results must be the same in every build: the compiler may not fuse a
// multiply and an add of its own accord (emitted programs are built with
// -march=native, where it could). Fused multiply-adds happen only where the
// code asks for them (std::fma).
//
// C++17: --emit-cpp copies this file.
#pragma once

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
