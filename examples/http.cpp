#include "http.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <ctime>
#include <utility>

namespace http {

namespace {

// Character classes (RFC 9110 §5.6.2)
bool is_tchar(char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Field values may hold visible characters, spaces, tabs and obs-text, but no other controls:
// a stray CR or NUL is how header injection and smuggling attempts look.
bool is_field_value(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
}

bool is_target(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7f;
    });
}

char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                               [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls f(element) for each trimmed, non-empty element of a comma-separated list.
template <class F>
void for_each_element(std::string_view list, F f)
{
    while (!list.empty()) {
        auto comma = list.find(',');
        auto element = trim(list.substr(0, comma));
        if (!element.empty()) f(element);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

// Cut one line (LF or CRLF terminated) off the front of `text`.
std::string_view take_line(std::string_view& text)
{
    auto lf = text.find('\n');
    auto line = text.substr(0, lf);
    text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// Content-Length, possibly repeated or a list of identical values (RFC 9112 §6.3 rule 5).
// Returns false when malformed or inconsistent; `value` saturates far above any limit.
bool merge_content_length(std::string_view field, std::optional<std::uint64_t>& value)
{
    bool ok = true;
    bool any = false;
    for_each_element(field, [&](std::string_view e) {
        any = true;
        std::uint64_t v = 0;
        for (char c : e) {
            if (c < '0' || c > '9') ok = false;
            v = std::min<std::uint64_t>(v * 10 + static_cast<std::uint64_t>(c - '0'), 1ull << 60);
        }
        if (value && *value != v) ok = false;
        value = v;
    });
    return ok && any;
}

}  // namespace

// Request accessors
std::optional<std::string_view> Request::header(std::string_view name) const
{
    for (const Header& h : headers)
        if (iequals(h.name, name)) return h.value;
    return std::nullopt;
}

std::optional<std::string_view> Request::query_param(std::string_view key) const
{
    std::string_view rest = query;
    while (!rest.empty()) {
        auto amp = rest.find('&');
        auto pair = rest.substr(0, amp);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == key)
            return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

// Parser
Parser::Parser(Limits limits) : limits_(limits) {}

void Parser::feed(std::string_view bytes)
{
    // Drop consumed bytes once they are the larger part, so pipelining stays linear.
    if (pos_ > 0 && pos_ * 2 >= buffer_.size()) {
        buffer_.erase(0, pos_);
        pos_ = 0;
    }
    buffer_.append(bytes);
}

bool Parser::take_continue() noexcept
{
    return std::exchange(continue_, false);
}

bool Parser::idle() const noexcept
{
    return !in_body_ && pos_ == buffer_.size();
}

Parser::Result Parser::fail(int status)
{
    error_ = status;
    return Result::error;
}

Parser::Result Parser::next(Request& out)
{
    if (error_ != 0) return Result::error;

    if (!in_body_) {
        // Empty lines before a request line are ignored (RFC 9112 §2.2)
        while (pos_ < buffer_.size() && (buffer_[pos_] == '\n' ||
                                          (buffer_[pos_] == '\r' && pos_ + 1 < buffer_.size() &&
                                           buffer_[pos_ + 1] == '\n'))) {
            pos_ += buffer_[pos_] == '\r' ? 2 : 1;
            scan_ = 0;
        }

        // Refuse what cannot become a request line at once: a TLS hello or binary junk would
        // otherwise wait for an empty line that never comes. A lone CR may still end a line.
        std::string_view pending(buffer_.data() + pos_, buffer_.size() - pos_);
        std::string_view method = pending.substr(0, pending.find(' '));
        if (pending != "\r" && !std::all_of(method.begin(), method.end(), is_tchar)) return fail(400);

        // Find the empty line that ends the head
        std::string_view data = pending;
        std::size_t end = std::string_view::npos;
        for (std::size_t i = data.find('\n', scan_); i != std::string_view::npos;
             i = data.find('\n', i + 1)) {
            if (i + 1 < data.size() && data[i + 1] == '\n') end = i + 2;
            else if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') end = i + 3;
            if (end != std::string_view::npos) break;
        }
        // A newline in the last two bytes may still start the empty line: look at it again.
        scan_ = data.size() >= 2 ? data.size() - 2 : 0;

        // Header size limit
        std::size_t head_size = end == std::string_view::npos ? data.size() : end;
        if (head_size > limits_.max_header_bytes) {
            bool long_line = data.substr(0, limits_.max_header_bytes).find('\n') == std::string_view::npos;
            return fail(long_line ? 414 : 431);
        }
        if (end == std::string_view::npos) return Result::incomplete;

        current_ = Request{};
        if (int status = parse_head(data.substr(0, end)); status != 0) return fail(status);
        pos_ += end;
        scan_ = 0;
        in_body_ = true;
    }

    // Body (Content-Length)
    if (buffer_.size() - pos_ < body_length_) return Result::incomplete;
    current_.body.assign(buffer_, pos_, body_length_);
    pos_ += body_length_;
    in_body_ = false;
    continue_ = false;
    out = std::move(current_);
    current_ = Request{};
    if (pos_ == buffer_.size()) {
        buffer_.clear();
        pos_ = 0;
    }
    return Result::request;
}

int Parser::parse_head(std::string_view head)
{
    Request& r = current_;

    // Request line: method SP target SP HTTP/1.x
    std::string_view line = take_line(head);
    auto sp1 = line.find(' ');
    auto sp2 = line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
    if (sp2 == std::string_view::npos) return 400;
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method) || !is_target(target)) return 400;
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
        return 400;
    if (version[5] != '1') return 505;
    r.method = method;
    r.target = target;
    r.minor_version = version[7] - '0';

    // Path and query
    std::string_view path = target;
    if (target == "*") {
        if (method != "OPTIONS") return 400;
    } else if (target.front() != '/') {
        // absolute-form: what a proxy would send; servers must accept it (RFC 9112 §3.2.2)
        auto scheme = target.find("://");
        if (scheme == std::string_view::npos ||
            !(iequals(target.substr(0, scheme), "http") || iequals(target.substr(0, scheme), "https")))
            return 400;
        auto slash = target.find_first_of("/?", scheme + 3);
        path = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
        if (!path.empty() && path.front() == '?') r.query = path.substr(1), path = "/";
    }
    auto question = path.find('?');
    r.path = path.substr(0, question);
    if (question != std::string_view::npos) r.query = path.substr(question + 1);

    // Header fields: name ":" OWS value OWS
    while (!head.empty()) {
        line = take_line(head);
        if (line.empty()) break;
        // Obsolete line folding and whitespace before the colon are rejected (RFC 9112 §5).
        if (line.front() == ' ' || line.front() == '\t') return 400;
        auto colon = line.find(':');
        if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return 400;
        std::string_view value = trim(line.substr(colon + 1));
        if (!is_field_value(value)) return 400;
        r.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
    }

    // Framing, Host and keep-alive
    std::optional<std::uint64_t> length;
    int hosts = 0;
    bool close = false;
    bool keep_alive = false;
    bool expect_continue = false;
    for (const Header& h : r.headers) {
        if (iequals(h.name, "Transfer-Encoding")) return 501;
        if (iequals(h.name, "Content-Length") && !merge_content_length(h.value, length)) return 400;
        if (iequals(h.name, "Host")) ++hosts;
        if (iequals(h.name, "Connection")) {
            for_each_element(h.value, [&](std::string_view token) {
                close = close || iequals(token, "close");
                keep_alive = keep_alive || iequals(token, "keep-alive");
            });
        }
        if (iequals(h.name, "Expect") && iequals(h.value, "100-continue")) expect_continue = true;
    }
    // A request to an HTTP/1.1 server must name exactly one host (RFC 9112 §3.2).
    if (hosts > 1 || (hosts == 0 && r.minor_version >= 1)) return 400;
    if (length.value_or(0) > limits_.max_body_bytes) return 413;
    body_length_ = static_cast<std::size_t>(length.value_or(0));
    r.keep_alive = !close && (r.minor_version >= 1 || keep_alive);
    continue_ = expect_continue && r.minor_version >= 1 && body_length_ > 0;
    return 0;
}

}  // namespace http
