// hello-http's request parser (examples/http.hpp): any bytes a client sends, cut anywhere.
// Cutting them differently gives the same requests and refuses the same; a refusal has one of
// the documented statuses; every request stays within the limits and holds together.
#include "fuzz.hpp"

#include "http.hpp"
#include "http_response.hpp"

#include <string>

namespace {

struct Outcome {
    std::vector<std::string> requests;   // each request, flattened
    int status = 0;                      // the refusal, or 0
    bool operator==(const Outcome&) const = default;
};

std::string flat(const http::Request& r)
{
    std::string s = r.method + '\0' + r.target + '\0' + r.path + '\0' + r.query + '\0' +
                    std::to_string(r.minor_version) + (r.keep_alive ? "k" : "c");
    for (const auto& h : r.headers) s += '\0' + h.name + ':' + h.value;
    return s + '\0' + r.body;
}

Outcome parse(const std::vector<std::string_view>& pieces, const http::Limits& limits)
{
    http::Parser parser(limits);
    Outcome out;
    for (const auto piece : pieces) {
        parser.feed(piece);
        for (;;) {
            http::Request r;
            const auto result = parser.next(r);
            if (result == http::Parser::Result::incomplete) break;
            if (result == http::Parser::Result::error) {
                out.status = parser.error_status();
                FUZZ_CHECK(parser.next(r) == http::Parser::Result::error);   // it stays in error
                return out;
            }
            FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
            FUZZ_CHECK(!r.method.empty() && !r.target.empty());
            FUZZ_CHECK(r.target == "*" || r.target.ends_with(r.query));
            FUZZ_CHECK(r.query.empty() || r.target.find('?') != std::string::npos);
            std::size_t head = r.method.size() + r.target.size();
            for (const auto& h : r.headers) {
                FUZZ_CHECK(!h.name.empty());
                FUZZ_CHECK(h.name.find_first_of(" \t:\r\n") == std::string::npos);
                FUZZ_CHECK(h.value.find_first_of("\r\n") == std::string::npos);
                head += h.name.size() + h.value.size();
            }
            FUZZ_CHECK(head <= limits.max_header_bytes);
            out.requests.push_back(flat(r));
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view bytes = fuzz::text(data, size);
    // The default limits, and small ones that inputs of a few hundred bytes can reach
    for (const http::Limits limits : {http::Limits{}, http::Limits{200, 100}}) {
        const Outcome whole = parse({bytes}, limits);
        const Outcome cut = parse(fuzz::chunks(bytes), limits);
        // Cut differently, the same requests come out, and what is refused is refused either way.
        // Only the status of a refusal may differ: a line that grows past the limit before its
        // bad byte arrives is refused as too long (414, 431), seen whole as malformed (400).
        FUZZ_CHECK(whole.requests == cut.requests);
        FUZZ_CHECK((whole.status == 0) == (cut.status == 0));
        const auto early = [](int s) { return s == 400 || s == 414 || s == 431; };
        FUZZ_CHECK(whole.status == cut.status || (early(whole.status) && early(cut.status)));
        if (whole.status != 0) {
            const int s = whole.status;
            FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
            const std::string answer = http::serialize(http::error_response(s));
            FUZZ_CHECK(answer.starts_with("HTTP/1.1 " + std::to_string(s) + " "));
        }
    }
    return 0;
}
