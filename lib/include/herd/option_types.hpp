// Typed options for an application's own command-line and config-file options, beside herd's
// standard ones (Program_options value semantics):
//
//     static void add_options(boost::program_options::options_description& options)
//     {
//         options.add_options()
//             ("idle-timeout", herd::duration_option("60s"), "close a connection silent this long")
//             ("greeting", herd::text_option("Hello!", "TEXT"), "body of /");
//     }
//     ... args()["idle-timeout"].as<herd::Duration>()
//
// --help shows "--idle-timeout D ... (default 60s)"; a value that does not parse is exit code 2
// with one line naming the option and the value, as for a standard option.
#pragma once

#include <herd/export.hpp>
#include <herd/options.hpp>

#include <boost/program_options/errors.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <string>

namespace herd {

/// A value an application's option refuses, with why: "invalid value '0' for --idle-timeout:
/// expected a duration above 0 (250ms, 2s, 1.5s, 3m)". Throw it from a value semantic or a
/// notifier; herd adds the option's name and where it was given.
class HERD_API InvalidOptionValue : public boost::program_options::validation_error {
public:
    explicit InvalidOptionValue(std::string why)
        : validation_error(validation_error::invalid_option_value), why_(std::move(why))
    {
    }
    const std::string& why() const { return why_; }

private:
    std::string why_;
};

/// A duration ("250ms", "2s", "1.5s", "3m", "1h" or a bare number of seconds), read back with
/// `.as<herd::Duration>()`; `default_text` is shown in --help and used when the option is not
/// given (empty: no default, the option is absent unless given). A value below `minimum` is
/// refused (by default: anything not above zero).
class HERD_API DurationOption : public boost::program_options::value_semantic_codecvt_helper<char>,
                                public boost::program_options::typed_value_base {
public:
    explicit DurationOption(std::string default_text, Duration minimum = Duration{1});

    std::string name() const override;
    unsigned min_tokens() const override { return 1; }
    unsigned max_tokens() const override { return 1; }
    bool is_composing() const override { return false; }
    bool is_required() const override { return false; }
    bool apply_default(boost::any& value) const override;
    void notify(const boost::any&) const override {}
    const std::type_info& value_type() const override { return typeid(Duration); }

protected:
    void xparse(boost::any& value, const std::vector<std::string>& tokens) const override;

private:
    std::string default_text_;
    Duration minimum_;
};

/// --NAME D: a duration option with this default (see DurationOption).
HERD_API DurationOption* duration_option(std::string default_text, Duration minimum = Duration{1});

/// --NAME TEXT: a string option with this default and placeholder, read back with `.as<std::string>()`.
HERD_API boost::program_options::typed_value<std::string>* text_option(std::string default_text,
                                                                     std::string placeholder = "TEXT");

/// --NAME N: a whole number with this default, read back with `.as<unsigned>()`.
HERD_API boost::program_options::typed_value<unsigned>* count_option(unsigned default_value,
                                                                   std::string placeholder = "N");

}  // namespace herd
