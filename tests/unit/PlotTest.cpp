// PlotTest.cpp — the --plot SVG: well-formed XML, one line per recorded
// series and none for the others, a legend, round ticks covering the data
// that agree with where the points are drawn, an escaped title, the same
// bytes every time, one epoch, NaN and infinities, constant series, and
// files that cannot be written.
#include "Plot.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace nnc_rt;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nnc-plot-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    if (DIR *d = ::opendir(path.c_str())) {
      while (dirent *e = ::readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
          names.push_back(e->d_name);
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------- a tiny XML checker

struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;                   ///< its own character data, entities decoded
  std::vector<std::string> ancestors; ///< the class attributes of its ancestors, outermost first
  std::string cls() const { return attrs.count("class") ? attrs.at("class") : ""; }
  bool within(const std::string &cls) const {
    for (const std::string &a : ancestors)
      if (a == cls)
        return true;
    return false;
  }
};

struct Xml {
  std::vector<Element> elements;
  std::string error; ///< empty if well-formed
};

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ':' ||
         c == '.';
}

/// Decodes character data, checking that every '&' starts a known entity.
bool decode(const std::string &raw, std::string &out) {
  out.clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '<')
      return false;
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    size_t semi = raw.find(';', i);
    if (semi == std::string::npos)
      return false;
    std::string name = raw.substr(i + 1, semi - i - 1);
    static const std::map<std::string, char> entities = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    if (!entities.count(name))
      return false;
    out += entities.at(name);
    i = semi;
  }
  return true;
}

/// Checks that tags balance, attributes are quoted and unique, character
/// data has no stray '<' or '&', and there is exactly one root element.
Xml parseXml(const std::string &s) {
  Xml xml;
  std::vector<size_t> open; // indices into elements
  size_t pos = 0, roots = 0;
  auto fail = [&](const std::string &what) {
    xml.error = what + " at byte " + std::to_string(pos);
    return xml;
  };
  if (s.compare(0, 5, "<?xml") == 0) {
    pos = s.find("?>");
    if (pos == std::string::npos)
      return fail("unterminated XML declaration");
    pos += 2;
  }
  while (pos < s.size()) {
    if (s[pos] != '<') {
      size_t end = std::min(s.find('<', pos), s.size());
      std::string raw = s.substr(pos, end - pos), text;
      if (!decode(raw, text))
        return fail("bad character data");
      if (open.empty()) {
        if (raw.find_first_not_of(" \t\r\n") != std::string::npos)
          return fail("text outside the root element");
      } else {
        xml.elements[open.back()].text += text;
      }
      pos = end;
      continue;
    }
    if (s.compare(pos, 4, "<!--") == 0) {
      size_t end = s.find("-->", pos);
      if (end == std::string::npos)
        return fail("unterminated comment");
      pos = end + 3;
      continue;
    }
    if (s.compare(pos, 2, "</") == 0) {
      size_t end = s.find('>', pos);
      if (end == std::string::npos)
        return fail("unterminated end tag");
      std::string name = s.substr(pos + 2, end - pos - 2);
      if (open.empty() || xml.elements[open.back()].name != name)
        return fail("</" + name + "> closes " +
                    (open.empty() ? "nothing" : "<" + xml.elements[open.back()].name + ">"));
      open.pop_back();
      pos = end + 1;
      continue;
    }
    ++pos;
    Element e;
    while (pos < s.size() && isNameChar(s[pos]))
      e.name += s[pos++];
    if (e.name.empty())
      return fail("a tag without a name");
    if (open.empty() && roots++ > 0)
      return fail("a second root element");
    for (size_t i : open)
      e.ancestors.push_back(xml.elements[i].cls());
    bool selfClosing = false;
    while (true) {
      while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos])))
        ++pos;
      if (pos >= s.size())
        return fail("unterminated tag <" + e.name + ">");
      if (s.compare(pos, 2, "/>") == 0) {
        selfClosing = true;
        pos += 2;
        break;
      }
      if (s[pos] == '>') {
        ++pos;
        break;
      }
      std::string attr;
      while (pos < s.size() && isNameChar(s[pos]))
        attr += s[pos++];
      if (attr.empty() || pos + 1 >= s.size() || s[pos] != '=' ||
          (s[pos + 1] != '"' && s[pos + 1] != '\''))
        return fail("a malformed attribute in <" + e.name + ">");
      char quote = s[pos + 1];
      size_t end = s.find(quote, pos + 2);
      if (end == std::string::npos)
        return fail("an unterminated attribute value");
      std::string value;
      if (!decode(s.substr(pos + 2, end - pos - 2), value))
        return fail("a bad attribute value");
      if (e.attrs.count(attr))
        return fail("attribute " + attr + " given twice");
      e.attrs[attr] = value;
      pos = end + 1;
    }
    xml.elements.push_back(e);
    if (!selfClosing)
      open.push_back(xml.elements.size() - 1);
  }
  if (!open.empty())
    return fail("<" + xml.elements[open.back()].name + "> is never closed");
  if (roots != 1)
    return fail("no root element");
  return xml;
}

// ---------------------------------------------------------------- queries on the plot

std::vector<const Element *> find(const Xml &xml, const std::string &cls,
                                  const std::string &within = "") {
  std::vector<const Element *> found;
  for (const Element &e : xml.elements)
    if (e.cls() == cls && (within.empty() || e.within(within)))
      found.push_back(&e);
  return found;
}

/// The points of a path's "M x,y L x,y M x,y" data, by subpath.
std::vector<std::vector<std::pair<double, double>>> subpaths(const std::string &d) {
  std::vector<std::vector<std::pair<double, double>>> out;
  std::istringstream in(d);
  std::string word;
  while (in >> word) {
    char command = word[0];
    double x, y;
    REQUIRE(std::sscanf(word.c_str() + 1, "%lf,%lf", &x, &y) == 2);
    if (command == 'M')
      out.emplace_back();
    REQUIRE(!out.empty());
    out.back().emplace_back(x, y);
  }
  return out;
}

struct Tick {
  double value, position;
};

/// A panel's tick labels with their positions (x for the x axis; for the y
/// axis the label's baseline, which sits 4 px below its tick line).
std::vector<Tick> ticks(const Xml &xml, const std::string &panel, bool yAxis) {
  std::vector<Tick> out;
  for (const Element *e : find(xml, yAxis ? "ytick" : "xtick", "panel " + panel)) {
    char *end = nullptr;
    double v = std::strtod(e->text.c_str(), &end);
    INFO("tick label '" << e->text << "'");
    REQUIRE(end != e->text.c_str());
    REQUIRE(*end == '\0');
    out.push_back({v, std::stod(e->attrs.at(yAxis ? "y" : "x")) - (yAxis ? 4.0 : 0.0)});
  }
  return out;
}

/// Ticks are round: evenly spaced by 1, 2 or 5 times a power of ten, each
/// a multiple of the step, and they cover [lo, hi] — without a wasted step
/// unless lo == hi, where the axis is widened on purpose.
void checkRoundTicks(const std::vector<Tick> &t, double lo, double hi) {
  REQUIRE(t.size() >= 2);
  CHECK(t.size() <= 12);
  double step = t[1].value - t[0].value;
  REQUIRE(step > 0);
  double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  INFO("step " << step << ", mantissa " << mantissa);
  CHECK((std::fabs(mantissa - 1) < 1e-6 || std::fabs(mantissa - 2) < 1e-6 ||
         std::fabs(mantissa - 5) < 1e-6));
  for (size_t i = 0; i < t.size(); ++i) {
    if (i > 0)
      CHECK(std::fabs((t[i].value - t[i - 1].value) - step) <= 1e-9 * step);
    double k = t[i].value / step;
    CHECK(std::fabs(k - std::round(k)) < 1e-6);
  }
  CHECK(t.front().value <= lo + 1e-9 * step);
  CHECK(t.back().value >= hi - 1e-9 * step);
  if (lo < hi) {
    CHECK(t.front().value > lo - step);
    CHECK(t.back().value < hi + step);
  }
}

/// The finite range of a panel's values over all splits.
std::pair<double, double> dataRange(const std::vector<EpochRecord> &records, bool accuracy) {
  double lo = INFINITY, hi = -INFINITY;
  for (const EpochRecord &r : records)
    for (const SplitMetrics *m : {&r.train, &r.val, &r.test}) {
      const std::optional<double> &x = accuracy ? m->accuracy : m->loss;
      double v = x ? *x * (accuracy ? 100 : 1) : NAN;
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
  return {lo, hi};
}

/// Where a value is drawn, by the linear map the tick labels define.
double positionOf(const std::vector<Tick> &t, double v) {
  const Tick &a = t.front(), &b = t.back();
  return a.position + (v - a.value) / (b.value - a.value) * (b.position - a.position);
}

std::vector<EpochRecord> typicalRun(int epochs) {
  std::vector<EpochRecord> records;
  for (int e = 1; e <= epochs; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.train.loss = 2.3 * std::exp(-0.35 * e) + 0.05;
    r.train.accuracy = 0.99 - 0.6 * std::exp(-0.5 * e);
    r.val.loss = 2.1 * std::exp(-0.3 * e) + 0.09;
    r.val.accuracy = 0.975 - 0.55 * std::exp(-0.45 * e);
    r.test.loss = 2.2 * std::exp(-0.3 * e) + 0.1;
    r.test.accuracy = 0.97 - 0.55 * std::exp(-0.45 * e);
    records.push_back(r);
  }
  return records;
}

Xml parsed(const std::string &svg) {
  Xml xml = parseXml(svg);
  INFO(xml.error);
  REQUIRE(xml.error.empty());
  return xml;
}

} // namespace

TEST_CASE("Plot: the XML checker itself refuses broken documents", "[plot]") {
  CHECK(parseXml("<svg><g></g></svg>").error.empty());
  CHECK(parseXml("<?xml version=\"1.0\"?>\n<svg a=\"1\"/>\n").error.empty());
  CHECK_FALSE(parseXml("<svg><g></svg>").error.empty());
  CHECK_FALSE(parseXml("<svg><g>").error.empty());
  CHECK_FALSE(parseXml("<svg></svg><svg></svg>").error.empty());
  CHECK_FALSE(parseXml("<svg>a & b</svg>").error.empty());
  CHECK_FALSE(parseXml("<svg>a < b</svg>").error.empty());
  CHECK_FALSE(parseXml("<svg a=1></svg>").error.empty());
  CHECK_FALSE(parseXml("<svg a=\"1\" a=\"2\"></svg>").error.empty());
  CHECK_FALSE(parseXml("<svg a=\"<\"></svg>").error.empty());
  CHECK_FALSE(parseXml("<svg></svg>text").error.empty());
}

TEST_CASE("Plot: two panels, a line and markers per recorded series, a legend", "[plot]") {
  std::vector<EpochRecord> records = typicalRun(12);
  Xml xml = parsed(curvesSvg(records, "mnist_mlp"));
  REQUIRE(xml.elements[0].name == "svg");
  CHECK(xml.elements[0].attrs.at("xmlns") == "http://www.w3.org/2000/svg");
  REQUIRE(find(xml, "panel loss").size() == 1);
  REQUIRE(find(xml, "panel accuracy").size() == 1);
  for (const char *panel : {"panel loss", "panel accuracy"})
    for (const char *series : {"train", "validation", "test"}) {
      INFO(panel << " " << series);
      auto paths = find(xml, std::string("series ") + series, panel);
      REQUIRE(paths.size() == 1);
      CHECK(paths[0]->name == "path");
      auto points = subpaths(paths[0]->attrs.at("d"));
      REQUIRE(points.size() == 1);
      CHECK(points[0].size() == 12);
      auto markers = find(xml, std::string("markers ") + series, panel);
      REQUIRE(markers.size() == 1);
      size_t count = 0;
      for (const Element &e : xml.elements)
        count += e.within(std::string("markers ") + series) && e.within(panel);
      CHECK(count == 12);
    }
  // Distinct colours.
  std::set<std::string> colours;
  for (const char *series : {"train", "validation", "test"})
    colours.insert(find(xml, std::string("series ") + series, "panel loss")[0]->attrs.at("stroke"));
  CHECK(colours.size() == 3);
  // The legend names each series once, in order.
  std::vector<std::string> labels;
  for (const Element &e : xml.elements)
    if (e.name == "text" && e.within("legend"))
      labels.push_back(e.text);
  CHECK(labels == std::vector<std::string>{"train", "validation", "test"});
  // Axis labels and the title.
  CHECK(find(xml, "ylabel", "panel loss")[0]->text == "loss");
  CHECK(find(xml, "ylabel", "panel accuracy")[0]->text == "accuracy (%)");
  CHECK(find(xml, "xlabel", "panel loss")[0]->text == "epoch");
  CHECK(find(xml, "title")[0]->text == "mnist_mlp");
}

TEST_CASE("Plot: ticks are round, cover the data, and agree with where points are drawn",
          "[plot]") {
  std::vector<EpochRecord> records = typicalRun(12);
  Xml xml = parsed(curvesSvg(records, "t"));
  for (bool accuracy : {false, true}) {
    std::string panel = accuracy ? "accuracy" : "loss";
    INFO(panel);
    auto [lo, hi] = dataRange(records, accuracy);
    std::vector<Tick> y = ticks(xml, panel, true), x = ticks(xml, panel, false);
    checkRoundTicks(y, lo, hi);
    checkRoundTicks(x, 1, 12);
    for (const Tick &t : x)
      CHECK(t.value == std::round(t.value)); // epochs are whole
    if (accuracy)
      CHECK(y.back().value <= 100); // 99% needs no tick at 110
    // Ticks and points lie inside the panel's frame.
    auto frame = find(xml, "frame", "panel " + panel);
    REQUIRE(frame.size() == 1);
    double fx = std::stod(frame[0]->attrs.at("x")), fy = std::stod(frame[0]->attrs.at("y"));
    double fw = std::stod(frame[0]->attrs.at("width")),
           fh = std::stod(frame[0]->attrs.at("height"));
    for (const Tick &t : x)
      CHECK((t.position > fx && t.position < fx + fw));
    for (const Tick &t : y)
      CHECK((t.position > fy && t.position < fy + fh));
    // Each drawn point sits where the ticks say its value is.
    const char *names[3] = {"train", "validation", "test"};
    SplitMetrics EpochRecord::*splits[3] = {&EpochRecord::train, &EpochRecord::val,
                                            &EpochRecord::test};
    for (int s = 0; s < 3; ++s) {
      auto points = subpaths(
          find(xml, std::string("series ") + names[s], "panel " + panel)[0]->attrs.at("d"))[0];
      for (size_t i = 0; i < records.size(); ++i) {
        const SplitMetrics &m = records[i].*splits[s];
        double v = accuracy ? *m.accuracy * 100 : *m.loss;
        CHECK(points[i].first == Approx(positionOf(x, double(records[i].epoch))).margin(0.02));
        CHECK(points[i].second == Approx(positionOf(y, v)).margin(0.02));
      }
    }
  }
}

TEST_CASE("Plot: niceTicks over many ranges", "[plot]") {
  const double ranges[][2] = {{0, 1},         {0.0213, 2.31}, {-3, 7},         {97.1, 99.4},
                              {0.3, 0.3001},  {1e-7, 3e-7},   {-1e6, -999000}, {12345, 678901},
                              {0.1, 0.7},     {1, 10},        {-0.5, 0.5},     {1e300, 3e300},
                              {-1e308, 1e308}};
  for (const auto &r : ranges) {
    INFO(r[0] << " .. " << r[1]);
    std::vector<double> v = niceTicks(r[0], r[1]);
    std::vector<Tick> t;
    for (double x : v)
      t.push_back({x, 0});
    checkRoundTicks(t, r[0], r[1]);
  }
  // A minimum step: epochs are never split.
  CHECK(niceTicks(1, 3, 6, 1.0) == std::vector<double>{1, 2, 3});
  CHECK(niceTicks(0, 1, 5) == std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1});
  CHECK(niceTicks(0.0213, 2.31) == std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5});
  CHECK(niceTicks(97.1, 99.4) == std::vector<double>{97, 97.5, 98, 98.5, 99, 99.5});
}

TEST_CASE("Plot: absent series draw nothing, a panel with no data says so", "[plot]") {
  std::vector<EpochRecord> records;
  for (int e = 1; e <= 5; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.train.loss = 1.0 / e;
    r.test.loss = 1.2 / e; // a test loss, no test accuracy, no validation at all
    records.push_back(r);
  }
  Xml xml = parsed(curvesSvg(records, "t"));
  CHECK(find(xml, "series train", "panel loss").size() == 1);
  CHECK(find(xml, "series test", "panel loss").size() == 1);
  CHECK(find(xml, "series validation").empty());
  CHECK(find(xml, "markers validation").empty());
  CHECK(find(xml, "series train", "panel accuracy").empty());
  CHECK(find(xml, "series test", "panel accuracy").empty());
  CHECK(find(xml, "ytick", "panel accuracy").empty());
  REQUIRE(find(xml, "nodata", "panel accuracy").size() == 1);
  CHECK(find(xml, "nodata", "panel accuracy")[0]->text == "no accuracy recorded");
  CHECK(find(xml, "legend-item validation").empty());
  CHECK(find(xml, "legend-item train").size() == 1);
  CHECK(find(xml, "legend-item test").size() == 1);
}

TEST_CASE("Plot: the title is escaped; control characters and bad UTF-8 replaced", "[plot]") {
  std::string title = "loss & <accuracy> \"quoted\" 'single' \xC3\xA9t\xC3\xA9 \x01\xFF\xC0\xAF";
  std::string svg = curvesSvg(typicalRun(3), title);
  Xml xml = parsed(svg);
  CHECK(svg.find("loss &amp; &lt;accuracy&gt; &quot;quoted&quot; &apos;single&apos;") !=
        std::string::npos);
  // é kept; \x01 a space; \xFF and the overlong \xC0\xAF each U+FFFD.
  CHECK(find(xml, "title")[0]->text == "loss & <accuracy> \"quoted\" 'single' \xC3\xA9t\xC3\xA9  "
                                       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  for (const Element &e : xml.elements)
    if (e.name == "title")
      CHECK(e.text == find(xml, "title")[0]->text);
}

TEST_CASE("Plot: the same input gives the same bytes, in any locale", "[plot]") {
  TempDir dir;
  std::vector<EpochRecord> records = typicalRun(7);
  std::string error;
  REQUIRE(writeCurvesSvg(dir.path + "/a.svg", records, "run", error));
  REQUIRE(writeCurvesSvg(dir.path + "/b.svg", records, "run", error));
  std::string a = slurp(dir.path + "/a.svg");
  CHECK(a == slurp(dir.path + "/b.svg"));
  CHECK(a == curvesSvg(records, "run"));
  // Numbers have fixed precision: two decimals for coordinates.
  CHECK(a.find("e-0") == std::string::npos);
  const char *commaLocales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
  bool switched = false;
  for (const char *l : commaLocales)
    if (std::setlocale(LC_NUMERIC, l) != nullptr) {
      switched = true;
      break;
    }
  if (switched) {
    std::string inComma = curvesSvg(records, "run");
    std::setlocale(LC_NUMERIC, "C");
    CHECK(inComma == a);
  } else {
    WARN("no locale with a decimal comma is installed; checked in the C locale only");
  }
}

TEST_CASE("Plot: one epoch is one point; NaN and infinities are skipped", "[plot]") {
  EpochRecord one;
  one.epoch = 1;
  one.train.loss = 0.7;
  one.train.accuracy = 0.8;
  Xml xml = parsed(curvesSvg({one}, "one"));
  for (const char *panel : {"panel loss", "panel accuracy"}) {
    INFO(panel);
    auto path = find(xml, "series train", panel);
    REQUIRE(path.size() == 1);
    auto points = subpaths(path[0]->attrs.at("d"));
    REQUIRE(points.size() == 1);
    CHECK(points[0].size() == 1);
    size_t markers = 0;
    for (const Element &e : xml.elements)
      markers += e.within("markers train") && e.within(panel);
    CHECK(markers == 1);
  }
  std::vector<Tick> x = ticks(xml, "loss", false);
  checkRoundTicks(x, 1, 1);
  checkRoundTicks(ticks(xml, "loss", true), 0.7, 0.7);
  checkRoundTicks(ticks(xml, "accuracy", true), 80, 80);

  // NaN and ±Inf break the line into pieces; an isolated point keeps its
  // marker even when a long run draws no markers otherwise.
  std::vector<EpochRecord> records = typicalRun(100);
  records[10].train.loss = NAN;
  records[11].train.loss = INFINITY;
  records[40].train.loss = -INFINITY;
  records[42].train.loss = NAN;
  records[20].val.accuracy = NAN;
  for (EpochRecord &r : records)
    r.test.loss.reset();
  records[70].test.loss = 0.4;        // the only test loss
  records[90].train.accuracy = 1e308; // finite, but not as a percentage
  std::string svg = curvesSvg(records, "gaps");
  Xml gaps = parsed(svg);
  for (const char *bad : {"nan", "NaN", "inf", "Inf"})
    CHECK(svg.find(bad) == std::string::npos);
  auto trainLoss = subpaths(find(gaps, "series train", "panel loss")[0]->attrs.at("d"));
  // Records [0, 10), [12, 40), {41} and [43, 100): the point alone is a
  // subpath of its own.
  REQUIRE(trainLoss.size() == 4);
  CHECK(trainLoss[0].size() == 10);
  CHECK(trainLoss[1].size() == 28);
  CHECK(trainLoss[2].size() == 1);
  CHECK(trainLoss[3].size() == 57);
  auto valAccuracy = subpaths(find(gaps, "series validation", "panel accuracy")[0]->attrs.at("d"));
  CHECK(valAccuracy.size() == 2);
  auto testLoss = find(gaps, "series test", "panel loss");
  REQUIRE(testLoss.size() == 1);
  auto testPoints = subpaths(testLoss[0]->attrs.at("d"));
  REQUIRE(testPoints.size() == 1);
  CHECK(testPoints[0].size() == 1);
  size_t testMarkers = 0, trainMarkers = 0;
  for (const Element &e : gaps.elements) {
    testMarkers += e.within("markers test");
    trainMarkers += e.within("markers train") && e.within("panel loss");
  }
  CHECK(testMarkers == 1);
  CHECK(trainMarkers == 1); // record 41's point, alone between two gaps
  auto trainAccuracy = subpaths(find(gaps, "series train", "panel accuracy")[0]->attrs.at("d"));
  CHECK(trainAccuracy.size() == 2);
  auto [lo, hi] = dataRange(records, true);
  CHECK(hi < 100);
  checkRoundTicks(ticks(gaps, "accuracy", true), lo, hi);
  checkRoundTicks(ticks(gaps, "loss", true), dataRange(records, false).first,
                  dataRange(records, false).second);
  for (const Tick &t : ticks(gaps, "accuracy", true))
    CHECK(t.value <= 100);
}

TEST_CASE("Plot: constant series get an axis of non-zero range around them", "[plot]") {
  for (double loss : {0.0, 0.5, 1234.5, -2.0}) {
    std::vector<EpochRecord> records;
    for (int e = 1; e <= 4; ++e) {
      EpochRecord r;
      r.epoch = e;
      r.train.loss = loss;
      r.train.accuracy = 1.0;
      r.val.accuracy = 1.0;
      records.push_back(r);
    }
    INFO("loss " << loss);
    Xml xml = parsed(curvesSvg(records, "flat"));
    std::vector<Tick> y = ticks(xml, "loss", true);
    checkRoundTicks(y, loss, loss);
    CHECK(y.front().value < y.back().value);
    if (loss >= 0)
      CHECK(y.front().value >= 0); // a loss that is never negative gets no negative ticks
    std::vector<Tick> acc = ticks(xml, "accuracy", true);
    checkRoundTicks(acc, 100, 100);
    CHECK(acc.back().value == 100);
    // The flat line is drawn inside the frame, level.
    auto points = subpaths(find(xml, "series train", "panel loss")[0]->attrs.at("d"))[0];
    for (const auto &p : points)
      CHECK(p.second == points[0].second);
    CHECK(points[0].second == Approx(positionOf(y, loss)).margin(0.02));
  }
}

TEST_CASE("Plot: written atomically; bad records and unwritable paths are refused", "[plot]") {
  TempDir dir;
  std::string path = dir.path + "/curves.svg", error;
  { std::ofstream(path) << "old"; }
  REQUIRE(writeCurvesSvg(path, typicalRun(3), "t", error));
  CHECK(slurp(path) == curvesSvg(typicalRun(3), "t"));
  CHECK(dir.list() == std::vector<std::string>{"curves.svg"}); // no temporary file left
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  mode_t mask = ::umask(0);
  ::umask(mask);
  CHECK((st.st_mode & 0777) == (0666 & ~mask)); // an ordinary file, not mkstemp's 0600

  std::string missing = dir.path + "/no/such/dir/curves.svg";
  CHECK_FALSE(writeCurvesSvg(missing, typicalRun(3), "t", error));
  CHECK(error == missing + ": cannot be written: No such file or directory");

  std::string subdir = dir.path + "/adir";
  REQUIRE(::mkdir(subdir.c_str(), 0755) == 0);
  CHECK_FALSE(writeCurvesSvg(subdir, typicalRun(3), "t", error));
  CHECK(error.rfind(subdir + ": cannot be written: ", 0) == 0);
  CHECK(dir.list() == std::vector<std::string>{"adir", "curves.svg"}); // the temporary is gone

  CHECK_FALSE(writeCurvesSvg(dir.path + "/e.svg", {}, "t", error));
  CHECK(error == dir.path + "/e.svg: no epochs to plot");
  std::vector<EpochRecord> backwards = typicalRun(3);
  backwards[2].epoch = 2;
  CHECK_FALSE(writeCurvesSvg(dir.path + "/b.svg", backwards, "t", error));
  CHECK(error == dir.path + "/b.svg: epochs must increase, but epoch 2 follows epoch 2");
  CHECK(dir.list() == std::vector<std::string>{"adir", "curves.svg"});
  CHECK(slurp(path) == curvesSvg(typicalRun(3), "t")); // untouched by the failures
}
