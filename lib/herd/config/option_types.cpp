// Typed options for an application's own options (see option_types.hpp).
#include <herd/config/option_types.hpp>

#include <herd/config/options.hpp>


namespace herd {

DurationOption::DurationOption(std::string default_text, Duration minimum)
    : default_text_(std::move(default_text)), minimum_(minimum)
{
}

std::string DurationOption::name() const
{
    // "D (=60s)": herd's --help turns the part in parentheses into "(default 60s)"
    return default_text_.empty() ? "D" : "D (=" + default_text_ + ")";
}

bool DurationOption::apply_default(boost::any& value) const
{
    if (default_text_.empty()) return false;
    value = parse_duration(default_text_);
    return true;
}

void DurationOption::xparse(boost::any& value, const std::vector<std::string>& tokens) const
{
    namespace po = boost::program_options;
    po::validators::check_first_occurrence(value);
    const std::string& text = po::validators::get_single_string(tokens);
    const std::string expected = minimum_ == Duration{1} ? "expected a duration above 0 (250ms, 2s, 1.5s, 3m)"
                                                         : "expected a duration of at least " + format_duration(minimum_);
    Duration d{};
    try {
        d = parse_duration(text);
    } catch (const std::invalid_argument&) {
        throw InvalidOptionValue(expected);
    }
    if (d < minimum_) throw InvalidOptionValue(expected);
    value = d;
}

DurationOption* duration_option(std::string default_text, Duration minimum)
{
    return new DurationOption(std::move(default_text), minimum);
}

boost::program_options::typed_value<std::string>* text_option(std::string default_text, std::string placeholder)
{
    return boost::program_options::value<std::string>()->default_value(default_text)->value_name(placeholder);
}

boost::program_options::typed_value<unsigned>* count_option(unsigned default_value, std::string placeholder)
{
    return boost::program_options::value<unsigned>()->default_value(default_value)->value_name(placeholder);
}

}  // namespace herd
