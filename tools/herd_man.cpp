// herd-man: the manual pages herd(1), herd.conf(5) and herdctl(1), written from the option table
// and herdctl's own help, so that they cannot drift from what the programs accept.
//
//   herd-man herd|herd.conf|herdctl VERSION > PAGE
//   herd-man reference VERSION > FILE     the options section of docs/reference.md, in markdown
//   herd-man conf > examples/herd.conf
//
// Built and run by meson at build time; the pages are installed under man1/ and man5/. The docs
// test compares the section of docs/reference.md between its two markers with `reference`'s output.
// `conf` writes the annotated configuration file shipped as examples/herd.conf (every key commented
// out with its default); a test checks that the shipped file is what it writes.
#include "herdctl_core.hpp"

#include <herd/config/option_table.hpp>
#include <herd/config/options.hpp>

#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using herd::OptionKind;
using herd::OptionScope;
using herd::OptionSpec;

// Text as roff reads it: backslashes escaped, hyphens as minus signs (so options can be
// searched and copied), a line never starting with a control character.
std::string roff(const std::string& text)
{
    std::string out;
    for (const char c : text) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    std::string safe;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && (line[0] == '.' || line[0] == '\'')) safe += "\\&";
        safe += line + "\n";
    }
    if (!safe.empty() && out.back() != '\n') safe.pop_back();
    return safe;
}

std::string header(const std::string& name, int section, const std::string& version, const std::string& what)
{
    return ".TH " + name + " " + std::to_string(section) + " \"\" \"herd " + version + "\" \"" +
           (section == 1 ? "User Commands" : "File Formats") + "\"\n.SH NAME\n" + roff(name) + " \\- " + roff(what) +
           "\n";
}

// One option as a tagged paragraph: "-w, --workers N" on the command line, "workers = N" in a file
std::string option_item(const OptionSpec& spec, const std::string& other_default = {}, bool as_key = false)
{
    const std::string names = spec.names;
    const std::string name = herd::long_name(spec);
    const auto comma = names.find(',');
    const bool takes_value = spec.kind != OptionKind::flag && spec.param && *spec.param;
    std::string tag;
    if (as_key) {
        tag = "\\fB" + roff(name) + "\\fR = " + (takes_value ? "\\fI" + roff(spec.param) + "\\fR" : "true");
    } else {
        if (comma != std::string::npos) tag = "\\fB\\-" + names.substr(comma + 1) + "\\fR, ";
        tag += "\\fB\\-\\-" + roff(name) + "\\fR";
        if (takes_value) tag += " \\fI" + roff(spec.param) + "\\fR";
    }
    std::string text = spec.help;
    if (!spec.default_text.empty()) text += " (default " + spec.default_text + ")";
    if (!other_default.empty() && other_default != spec.default_text)
        text += "; in a server binary: " + other_default;
    if (spec.kind == OptionKind::repeated && as_key) text += ". One line each";
    return ".TP\n" + tag + "\n" + roff(text) + (text.back() == '.' ? "" : ".") + "\n";
}

// The options by their --help group, in table order
std::vector<std::pair<std::string, std::vector<OptionSpec>>> by_group(const std::vector<OptionSpec>& specs)
{
    std::vector<std::pair<std::string, std::vector<OptionSpec>>> groups;
    for (const auto& spec : specs) {
        if (groups.empty() || groups.back().first != spec.group) groups.push_back({spec.group, {}});
        groups.back().second.push_back(spec);
    }
    return groups;
}

std::map<std::string, std::string> server_defaults()
{
    std::map<std::string, std::string> out;
    for (const auto& spec : herd::standard_specs(herd::Options{}, false)) out[herd::long_name(spec)] = spec.default_text;
    return out;
}

const char* const signals_section = R"(.SH SIGNALS
.TP
\fBINT\fR, \fBTERM\fR
Fast shutdown: the stop signal to every worker, KILL after \-\-kill\-timeout, exit 0.
.TP
\fBQUIT\fR
Graceful shutdown: every worker finishes its current work, KILL after \-\-graceful\-timeout, exit 0.
.TP
\fBTTIN\fR, \fBTTOU\fR
One worker more, one fewer (gracefully). Signals coalesce: exact changes go through herdctl scale.
.TP
\fBHUP\fR
Read the configuration again and replace the workers, rolling: a new one is ready before an old one retires.
.TP
\fBUSR1\fR
Reopen the log file; forwarded to the workers of server binaries.
.TP
\fBUSR2\fR
Upgrade in place: the binary at the original path is executed, keeps the listening sockets and
adopts every worker; it goes back to the previous binary if the new generation fails.
)";

const char* const exit_section = R"(.SH EXIT STATUS
.TP
\fB0\fR
Stopped by INT, TERM, QUIT or herdctl stop; \-\-check found nothing wrong.
.TP
\fB1\fR
A failure at start: an address in use, a pid file held by a live manager, no permission.
.TP
\fB2\fR
Bad input: an unknown option, a malformed value, a config file that does not parse. One line names it.
.TP
\fB3\fR
Giving up: the pool never got ready, or a pool failed (its plan or restart limit said stop).
)";

std::string herd_page(const std::string& version)
{
    std::string page = header("herd", 1, version, "run any program as a supervised pool of workers");
    page += ".SH SYNOPSIS\n\\fBherd\\fR [\\fIOPTIONS\\fR] \\-\\- \\fICOMMAND\\fR [\\fIARGS\\fR...]\n.br\n"
            "\\fBherd\\fR \\-\\-config \\fIFILE\\fR [\\fIOPTIONS\\fR]\n";
    page += ".SH DESCRIPTION\n" + roff(
        "herd runs N copies of COMMAND as workers under one manager process: it replaces a worker that "
        "exits or hangs, retires workers that are too old or have served enough requests (gracefully, "
        "forcibly after a timeout), scales on TTIN and TTOU, reloads on HUP and upgrades itself on USR2 "
        "without closing a listening socket. Listening sockets are handed to each program the systemd way "
        "(LISTEN_FDS, LISTEN_FDNAMES, from fd 3). A program may write heartbeat records to HERD_HEARTBEAT_FD; "
        "one that knows nothing of herd is ready once it has run for --ready-after. Every line a worker "
        "writes on stdout or stderr is logged by the manager with its pool, slot and pid. With --config, "
        "one manager runs several pools, each a [pool.NAME] section of the file (herd.conf(5)). Server "
        "binaries built on the herd library accept the same options, less those of exec mode.") + "\n";
    page += ".SH OPTIONS\n";
    const auto other = server_defaults();
    for (const auto& [group, specs] : by_group(herd::standard_specs(herd::exec_defaults(), true))) {
        page += ".SS " + roff(group) + "\n";
        for (const auto& spec : specs) {
            const auto it = other.find(herd::long_name(spec));
            page += option_item(spec, it == other.end() ? "" : it->second);
        }
    }
    page += ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nShow the options and exit.\n"
            ".TP\n\\fB\\-\\-version\\fR\nShow the version and exit.\n";
    page += signals_section;
    page += exit_section;
    page += ".SH ENVIRONMENT\n.TP\n\\fBHERD_HEARTBEAT_FD\\fR\nIn each program: where it may write heartbeat records.\n"
            ".TP\n\\fBHERD_POOL\\fR, \\fBHERD_SLOT\\fR, \\fBHERD_GENERATION\\fR\nIn each program: its pool, slot and "
            "generation.\n.TP\n\\fBLISTEN_FDS\\fR, \\fBLISTEN_FDNAMES\\fR\nIn each program: its listening sockets, "
            "from fd 3. Given to herd by systemd, they are the sockets herd serves.\n";
    page += ".SH SEE ALSO\n\\fBherdctl\\fR(1), \\fBherd.conf\\fR(5), README.md and docs/ of the herd sources (installed under share/doc/herd)\n";
    return page;
}

std::string conf_page(const std::string& version)
{
    std::string page = header("herd.conf", 5, version, "configuration file of herd and of herd server binaries");
    page += ".SH SYNOPSIS\n\\fBherd \\-\\-config\\fR \\fIFILE\\fR, \\fIserver\\fR \\fB\\-\\-config\\fR \\fIFILE\\fR\n";
    page += ".SH DESCRIPTION\n" + roff(
        "An INI file: one `key = value` per line, `#` starts a comment, keys are the long options without "
        "their dashes, a repeatable option is given once per line. Before the first section, every key applies "
        "to the whole manager or is every pool's default; the command line wins over the file's top. "
        "[pool] gives every pool's defaults and [pool.NAME] one pool, each over what comes before it. "
        "Without [pool.NAME] sections the manager runs one pool, main. A pool runs `command = PROGRAM ARGS` "
        "(exec) or `worker = TYPE` (a Worker type of the server binary). HUP reads the file again; a file "
        "with an error is refused and every pool keeps running. Every error names the file, the line and the "
        "key, exit code 2.") + "\n";
    page += ".SH EXAMPLE\n.nf\n" + roff(
        "control = /run/app/control.sock\nrestart-strategy = one\n\n[pool]\ngraceful-timeout = 10s\n\n"
        "[pool.web]\nworker = web\nworkers = 4\nlisten = 127.0.0.1:8080\n\n[pool.jobs]\n"
        "command = python3 jobs.py\nworkers = 2\nrestart = transient\nplan = restart, restart 5s, wait\n") +
            "\n.fi\n";
    const auto other = server_defaults();
    const auto section = [&](const std::string& title, OptionScope scope) {
        page += ".SH " + title + "\n";
        for (const auto& [group, specs] : by_group(herd::standard_specs(herd::exec_defaults(), true))) {
            std::string items;
            for (const auto& spec : specs) {
                if (spec.scope != scope || spec.command_line_only) continue;
                const auto it = other.find(herd::long_name(spec));
                items += option_item(spec, it == other.end() ? "" : it->second, true);
            }
            if (!items.empty()) page += ".SS " + roff(group) + "\n" + items;
        }
    };
    section("KEYS OF THE WHOLE MANAGER (BEFORE THE FIRST SECTION ONLY)", OptionScope::manager);
    section("KEYS OF EACH POOL (THE TOP, [pool] OR [pool.NAME])", OptionScope::pool);
    page += ".SS [pool.NAME] only\n.TP\n\\fBcommand\\fR = \\fIPROGRAM ARGS\\fR\nThe program its workers run, "
            "split into words as a shell would (quotes, backslash), without globbing or variables.\n"
            ".TP\n\\fBworker\\fR = \\fITYPE\\fR\nA Worker type the server binary registered by name.\n";
    page += ".SH SEE ALSO\n\\fBherd\\fR(1), \\fBherdctl\\fR(1)\n";
    return page;
}

std::string herdctl_page(const std::string& version)
{
    const auto parsed = herdctl::parse_command_line({"--help"}, "");
    const std::string help = std::get<herdctl::Info>(parsed).text;
    std::string page = header("herdctl", 1, version, "operate a running herd manager through its control socket");
    page += ".SH SYNOPSIS\n\\fBherdctl\\fR [\\fB\\-\\-control\\fR \\fIPATH\\fR] [\\fB\\-\\-json\\fR] "
            "[\\fB\\-\\-timeout\\fR \\fID\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n";
    page += ".SH DESCRIPTION\n.nf\n" + roff(help) + "\n.fi\n";
    page += ".SH ENVIRONMENT\n.TP\n\\fBHERD_CONTROL\\fR\nThe control socket when \\-\\-control is not given.\n";
    page += ".SH SEE ALSO\n\\fBherd\\fR(1), \\fBherd.conf\\fR(5)\n";
    return page;
}

// Text in a markdown table cell: a bar would end the cell
std::string cell(const std::string& text)
{
    std::string out;
    for (const char c : text) {
        if (c == '|') out += "\\|";
        else out += c;
    }
    return out;
}

// docs/reference.md's options section: a table per --help group, in table order, with the scope
// of each option and both modes' defaults where they differ
std::string reference_options()
{
    std::string out = "<!-- generated from lib/herd/config/option_table.cpp by `build/tools/herd-man reference VERSION`; "
                      "tests/docs/check_docs.py --write-options puts it here -->\n";
    const auto server = server_defaults();
    for (const auto& [group, specs] : by_group(herd::standard_specs(herd::exec_defaults(), true))) {
        out += "\n**" + group + "**\n\n| option | default | scope | meaning |\n|---|---|---|---|\n";
        for (const auto& spec : specs) {
            const std::string names = spec.names, name = herd::long_name(spec);
            const auto comma = names.find(',');
            std::string option = comma == std::string::npos ? "" : "-" + names.substr(comma + 1) + ", ";
            option += "--" + name;
            if (spec.kind != OptionKind::flag && spec.param && *spec.param) option += " " + std::string(spec.param);
            std::string def = !spec.default_text.empty() ? spec.default_text : spec.kind == OptionKind::flag ? "off" : "none";
            const auto it = server.find(name);
            if (spec.exec_only) def += " (programs only: herd -- COMMAND, or a pool's command =)";
            else if (it != server.end() && it->second != spec.default_text)
                def += " (exec mode), " + (it->second.empty() ? "none" : it->second) +
                      " (server binary)";
            std::string scope = spec.scope == OptionScope::manager ? "manager" : "pool";
            if (spec.command_line_only) scope += ", command line only";
            if (spec.kind == OptionKind::repeated) scope += ", repeatable";
            out += "| `" + cell(option) + "` | " + cell(def) + " | " + scope + " | " + cell(spec.help) + " |\n";
        }
    }
    return out + "<!-- end of the generated options -->\n";
}

// Comment lines of at most 100 columns
std::string wrap(const std::string& text)
{
    std::string out, line = "#";
    std::istringstream words(text);
    for (std::string word; words >> word;) {
        if (line.size() > 1 && line.size() + 1 + word.size() > 100) {
            out += line + "\n";
            line = "#";
        }
        line += " " + word;
    }
    return out + line + "\n";
}

// One key of the annotated file: its help and default as comment lines, then the key itself
// commented out with its default (or its parameter, without one).
std::string conf_item(const OptionSpec& spec, const std::string& other_default)
{
    std::string text = spec.help;
    if (spec.kind == OptionKind::repeated) text += "; one line each";
    if (spec.exec_only) text += "; exec pools only (command = ...)";
    std::string item = wrap(text);
    std::string value = spec.default_text;
    if (spec.kind == OptionKind::flag) value = "false";
    if (!other_default.empty() && other_default != spec.default_text)
        item += "# (in a server binary the default is " + other_default + ")\n";
    // "off" is how --help shows a limit that is not set; the value that sets it so is 0
    if (value == "off") {
        value = "0";
        item += "# (0: off, the default)\n";
    }
    if (value.empty() || value.find(' ') != std::string::npos) value = spec.param ? spec.param : "";
    return item + "#" + herd::long_name(spec) + " = " + value + "\n";
}

// examples/herd.conf: every key of the file by scope and group, each with its default.
std::string conf_file()
{
    std::string out = R"(# herd.conf: every key of herd's configuration file, its default and what it does.
# Written by `herd-man conf` from herd's option table (a test keeps this copy equal to it); the
# reference is herd.conf(5). Uncomment what you change; `herd --check --config FILE -- CMD` (or
# `SERVER --check --config FILE`) checks a file without starting anything, exit 0 or 2.
#
# Syntax: one `key = value` per line, `#` starts a comment, keys are the long options without
# their dashes. Durations: 500ms, 10s, 2m, 1h; sizes: 512M, 2G. A server binary (hello-http)
# takes its own options here too, at the top (--greeting = ...: see its --help).
# The command line wins over the top of the file; [pool] over the top, [pool.NAME] over [pool].
# HUP reads the file again; one with an error is refused and every pool keeps running.
)";
    const auto other = server_defaults();
    const auto section = [&](OptionScope scope) {
        for (const auto& [group, specs] : by_group(herd::standard_specs(herd::exec_defaults(), true))) {
            std::string items;
            for (const auto& spec : specs) {
                if (spec.scope != scope || spec.command_line_only) continue;
                const auto it = other.find(herd::long_name(spec));
                items += conf_item(spec, it == other.end() ? "" : it->second) + "\n";
            }
            if (!items.empty()) out += "## " + std::string(group) + "\n\n" + items;
        }
    };
    out += "\n# ---- The whole manager: before the first section only ----\n\n";
    section(OptionScope::manager);
    out += "# ---- Every pool's defaults: at the top, or in [pool] ----\n"
           "# Each key below may also be given per pool in its [pool.NAME] section.\n\n[pool]\n\n";
    section(OptionScope::pool);
    out += R"(# ---- One pool per [pool.NAME] section, started in file order, stopped in reverse ----
# Without any, the manager runs one pool, main, of the command line's program or Worker type.
# A pool runs a program (command, split like a shell without globbing or variables) or a
# Worker type registered by the server binary (worker), and takes any key of [pool] above.
#
#[pool.web]
#worker = web
#workers = 4
#listen = 127.0.0.1:8080
#
#[pool.jobs]
#command = /usr/bin/python3 jobs.py
#workers = 2
#restart = transient
#plan = restart, restart 5s, wait
)";
    return out;
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc == 2 && std::string(argv[1]) == "conf") {
        std::cout << conf_file();
        return 0;
    }
    if (argc != 3) {
        std::fprintf(stderr, "usage: herd-man herd|herd.conf|herdctl|reference VERSION, or herd-man conf\n");
        return 2;
    }
    const std::string which = argv[1], version = argv[2];
    if (which == "herd") std::cout << herd_page(version);
    else if (which == "herd.conf") std::cout << conf_page(version);
    else if (which == "herdctl") std::cout << herdctl_page(version);
    else if (which == "reference") std::cout << reference_options();
    else {
        std::fprintf(stderr, "herd-man: no page '%s' (herd, herd.conf, herdctl, reference)\n", argv[1]);
        return 2;
    }
    return 0;
}
