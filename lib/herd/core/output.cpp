#include <herd/core/output.hpp>

#include <herd/core/text.hpp>

#include <algorithm>

namespace herd {

namespace {

std::string without_cr(std::string text)
{
    if (!text.empty() && text.back() == '\r') text.pop_back();
    return text;
}

}  // namespace

std::string loggable(std::string_view line)
{
    std::string text;
    for (;;) {
        const auto tab = line.find('\t');
        text += printable(line.substr(0, tab), max_output_line);
        if (tab == std::string_view::npos) return text;
        text += '\t';
        line.remove_prefix(tab + 1);
    }
}

std::vector<OutputLine> OutputLines::feed(std::string_view bytes)
{
    std::vector<OutputLine> lines;
    while (!bytes.empty()) {
        const auto nl = bytes.find('\n');
        const std::string_view chunk = bytes.substr(0, nl);
        bytes = nl == std::string_view::npos ? std::string_view{} : bytes.substr(nl + 1);

        // Keep at most one byte past the bound: enough to know the line is too long.
        if (!dropping_) pending_.append(chunk.substr(0, max_line_ + 1 - std::min(max_line_ + 1, pending_.size())));
        if (!dropping_ && pending_.size() > max_line_) {
            pending_.resize(max_line_);
            lines.push_back({std::move(pending_), true});
            pending_.clear();
            dropping_ = true;
        }
        if (nl == std::string_view::npos) break;
        if (dropping_) {
            dropping_ = false;   // the long line ended here; the next one starts clean
            continue;
        }
        lines.push_back({without_cr(std::move(pending_)), false});
        pending_.clear();
    }
    return lines;
}

std::optional<OutputLine> OutputLines::finish()
{
    dropping_ = false;
    if (pending_.empty()) return std::nullopt;
    OutputLine last{without_cr(std::move(pending_)), false};
    pending_.clear();
    return last;
}

}  // namespace herd
