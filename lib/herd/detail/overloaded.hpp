// A visitor made of lambdas, one per alternative: std::visit(overloaded{[](const A&) {...}, ...}, v).
#pragma once

namespace herd::detail {

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

}  // namespace herd::detail
