// doctest's main for every integration test executable (compiled once).
//
// doctest 2.4.9 has no run-time skip: a case that cannot set up its environment calls HERD_SKIP
// (harness.hpp), which counts it and returns. When every case that ran was skipped and none
// failed, the run exits 77, which meson counts as skipped; meson.build gives every skip-prone case
// a meson test of its own (a -tc= filter), so each skip is counted as one.
#define DOCTEST_CONFIG_IMPLEMENT
#include "harness.hpp"

#include <doctest/doctest.h>

namespace {

// Counts the cases that ran and those of them that skipped.
struct SkipCounter : doctest::IReporter {
    static inline int ran = 0;
    static inline int skipped = 0;
    std::size_t skips_at_start = 0;

    explicit SkipCounter(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData&) override { skips_at_start = herd::testing::skips(); }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override
    {
        ++ran;
        if (herd::testing::skips() > skips_at_start) ++skipped;
    }
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("herd-skips", 1, SkipCounter);

}  // namespace

int main(int argc, char** argv)
{
    doctest::Context context(argc, argv);
    const int result = context.run();
    if (context.shouldExit() || result != 0) return result;
    if (SkipCounter::ran > 0 && SkipCounter::skipped == SkipCounter::ran) return 77;
    return 0;
}
