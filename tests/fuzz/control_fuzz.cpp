// A control-socket request line (manager/control.hpp), as any local client may send it. The parser
// never throws; what it accepts keeps the protocol's rules; every error is one printable sentence
// that error_answer() turns into JSON which reads back as {"ok":false,"error":that sentence}.
#include "fuzz.hpp"

#include <herd/manager/control.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace herd;
    const auto parsed = control::parse_request(fuzz::text(data, size));
    if (const auto* error = std::get_if<std::string>(&parsed)) {
        FUZZ_CHECK(!error->empty());
        FUZZ_CHECK(fuzz::one_printable_line(*error));   // logged as well as answered
        FUZZ_CHECK(error->size() <= 1024);
        const std::string answer = control::error_answer(*error);
        FUZZ_CHECK(!answer.empty() && answer.back() == '\n');
        FUZZ_CHECK(std::count(answer.begin(), answer.end(), '\n') == 1);
        boost::system::error_code ec;
        const auto v = boost::json::parse(answer, ec);
        FUZZ_CHECK(!ec && v.is_object());
        const auto& o = v.as_object();
        FUZZ_CHECK(o.size() == 2 && o.at("ok") == false);
        FUZZ_CHECK(o.at("error").is_string() && o.at("error").as_string() == *error);
        return 0;
    }
    const Request& r = std::get<Request>(parsed);
    FUZZ_CHECK(r.command != Command::reopen_logs);
    if (r.pool) FUZZ_CHECK(control::is_pool_name(*r.pool));
    if (r.command == Command::scale) {
        FUZZ_CHECK(r.workers.has_value() != (r.delta != 0) || (!r.workers && r.delta == 0));
        if (r.workers) FUZZ_CHECK(*r.workers <= max_workers);
        FUZZ_CHECK(r.delta >= -int(max_workers) && r.delta <= int(max_workers));
    } else {
        FUZZ_CHECK(!r.workers && r.delta == 0);
    }
    if (r.command == Command::restart || r.command == Command::start || r.command == Command::plan)
        FUZZ_CHECK(r.pool.has_value());
    if (r.command == Command::reload || r.command == Command::upgrade) FUZZ_CHECK(!r.pool);
    if (r.plan) {
        FUZZ_CHECK(r.command == Command::plan);
        FUZZ_CHECK(r.plan->size() <= control::max_plan_text);
        FUZZ_CHECK(std::none_of(r.plan->begin(), r.plan->end(), [](char c) { return (unsigned char)c < 0x20 || c == 0x7f; }));
    }
    return 0;
}
