// Plot.cpp — training curves as SVG (see runtime/Plot.h).
#include "Plot.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace nnc_rt {
namespace {

// ---------------------------------------------------------------- numbers

/// snprintf, with the C locale's decimal comma (if a program set one) put
/// back to a point, so the output never depends on the locale.
std::string format(const char *fmt, int precision, double v) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, precision, v);
  for (char *p = buf; *p; ++p)
    if (*p == ',')
      *p = '.';
  std::string s = buf;
  // "-0.00" is 0.
  if (s[0] == '-' && s.find_first_not_of("-0.", 0) == std::string::npos)
    s.erase(0, 1);
  return s;
}

/// A coordinate, to a hundredth of a pixel.
std::string px(double v) {
  return format("%.*f", 2, std::isfinite(v) ? v : 0.0);
}

/// Tick positions: value(k) = k * mantissa * 10^exponent for k0 <= k <= k1.
struct Ticks {
  int64_t k0 = 0, k1 = 1;
  int mantissa = 1, exponent = 0;
  double value(int64_t k) const {
    double m = double(k) * mantissa;
    // Divide by an exact power of ten rather than multiply by an inexact
    // one, so 3 x 0.1 is 0.3.
    return exponent >= 0 ? m * std::pow(10.0, exponent) : m / std::pow(10.0, -exponent);
  }
  double step() const { return value(1); }
  double lo() const { return value(k0); }
  double hi() const { return value(k1); }
};

Ticks makeTicks(double lo, double hi, int target, double minStep) {
  if (target < 1)
    target = 1;
  double rough = std::max((hi / 2 - lo / 2) / target * 2, minStep); // halves: no overflow
  if (!(rough > 0) || !std::isfinite(rough))
    rough = 1;
  int exponent = static_cast<int>(std::floor(std::log10(rough)));
  double norm = rough / std::pow(10.0, exponent);
  Ticks t;
  t.exponent = exponent;
  t.mantissa = norm <= 1.0 ? 1 : norm <= 2.0 ? 2 : norm <= 5.0 ? 5 : 10;
  if (t.mantissa == 10) {
    t.mantissa = 1;
    ++t.exponent;
  }
  if (t.step() < minStep) { // rounding: step up to the next 1-2-5 value
    t.mantissa = t.mantissa == 1 ? 2 : t.mantissa == 2 ? 5 : 1;
    if (t.mantissa == 1)
      ++t.exponent;
  }
  double step = t.step();
  t.k0 = static_cast<int64_t>(std::floor(lo / step));
  t.k1 = static_cast<int64_t>(std::ceil(hi / step));
  // floor/ceil of a quotient that rounded the wrong way: make sure the
  // ticks cover [lo, hi] exactly as computed by value().
  while (t.lo() > lo)
    --t.k0;
  while (t.hi() < hi)
    ++t.k1;
  // Pull in a bound that a quotient rounded outwards (3.0000000001 → 4).
  while (t.k1 - t.k0 > 1 && t.value(t.k0 + 1) <= lo)
    ++t.k0;
  while (t.k1 - t.k0 > 1 && t.value(t.k1 - 1) >= hi)
    --t.k1;
  return t;
}

/// Tick labels: as many decimals as the step needs, in fixed notation, or
/// in scientific notation for magnitudes from 10^7.
std::string tickLabel(const Ticks &t, double v) {
  double maxAbs = std::max(std::fabs(t.lo()), std::fabs(t.hi()));
  if (maxAbs >= 1e7) {
    int digits = static_cast<int>(std::floor(std::log10(maxAbs))) - t.exponent;
    return format("%.*e", std::clamp(digits, 0, 15), v);
  }
  return format("%.*f", std::clamp(-t.exponent, 0, 15), v);
}

// ---------------------------------------------------------------- text

/// The title as XML character data: markup escaped, control characters
/// and invalid UTF-8 replaced (U+FFFD), so the document stays well formed.
std::string escapeXml(const std::string &s) {
  std::string out;
  const unsigned char *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c < 0x20 || c == 0x7F ? ' ' : static_cast<char>(c);
        break;
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length, the smallest code point it may encode.
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (c >= 0xF5)
      len = 0;
    uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls
    // (allowed in XML 1.0 but never meant in a title).
    ok = ok && !(len == 3 && cp < 0x800) && !(len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) &&
         !(cp >= 0xD800 && cp <= 0xDFFF) && !(cp >= 0x80 && cp <= 0x9F) && cp != 0xFFFE &&
         cp != 0xFFFF;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// ---------------------------------------------------------------- layout

constexpr double kWidth = 1000, kHeight = 440;
constexpr double kPanelWidth = kWidth / 2;
constexpr double kPlotLeft = 78, kPlotRight = 22; // inside a panel
constexpr double kPlotTop = 82, kPlotBottom = kHeight - 62;
constexpr double kInset = 10; // between the frame and the first and last ticks, for the markers

struct Series {
  const char *name; // the class and the legend label
  const char *color;
  const char *marker; // circle, square, triangle
  SplitMetrics EpochRecord::*split;
};
const Series kSeries[3] = {{"train", "#1f77b4", "circle", &EpochRecord::train},
                           {"validation", "#ff7f0e", "square", &EpochRecord::val},
                           {"test", "#2ca02c", "triangle", &EpochRecord::test}};

/// A series' values in one panel: NaN where there is none.
std::vector<double> values(const std::vector<EpochRecord> &records, const Series &s,
                           bool accuracy) {
  std::vector<double> v;
  for (const EpochRecord &r : records) {
    const std::optional<double> &x = accuracy ? (r.*s.split).accuracy : (r.*s.split).loss;
    v.push_back(x && std::isfinite(*x) ? *x * (accuracy ? 100.0 : 1.0) : NAN);
  }
  for (double &x : v) // a finite fraction can overflow when made a percentage
    if (!std::isfinite(x))
      x = NAN;
  return v;
}

bool anyFinite(const std::vector<double> &v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

/// The marker of a series at (x, y).
std::string marker(const Series &s, double x, double y) {
  if (std::strcmp(s.marker, "circle") == 0)
    return "<circle cx=\"" + px(x) + "\" cy=\"" + px(y) + "\" r=\"3.5\"/>";
  if (std::strcmp(s.marker, "square") == 0)
    return "<rect x=\"" + px(x - 3.2) + "\" y=\"" + px(y - 3.2) +
           "\" width=\"6.40\" height=\"6.40\"/>";
  return "<path d=\"M" + px(x) + "," + px(y - 4.2) + " L" + px(x + 4) + "," + px(y + 3) + " L" +
         px(x - 4) + "," + px(y + 3) + " Z\"/>";
}

/// Widens a degenerate range: around a constant value, and to keep the
/// data inside [0, ...] (and [..., 100] for percentages) where it is.
void axisRange(double &lo, double &hi, bool percent) {
  double dataLo = lo, dataHi = hi;
  double scale = std::max(std::fabs(lo), std::fabs(hi));
  if (hi - lo <= 1e-9 * scale) {
    double mid = lo / 2 + hi / 2;
    double d = mid == 0 ? 1 : std::fabs(mid) * 0.1;
    lo = mid - d;
    hi = mid + d;
  }
  if (dataLo >= 0 && lo < 0)
    lo = 0;
  if (percent && dataHi <= 100 && hi > 100)
    hi = 100;
}

void panel(std::string &svg, const std::vector<EpochRecord> &records, bool accuracy, double left) {
  const char *name = accuracy ? "accuracy" : "loss";
  double x0 = left + kPlotLeft, x1 = left + kPanelWidth - kPlotRight;
  double y0 = kPlotTop, y1 = kPlotBottom;
  svg += "<g class=\"panel " + std::string(name) + "\">\n";

  std::vector<std::vector<double>> data;
  double lo = INFINITY, hi = -INFINITY;
  for (const Series &s : kSeries) {
    data.push_back(values(records, s, accuracy));
    for (double v : data.back())
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  }
  const char *axisLabel = accuracy ? "accuracy (%)" : "loss";
  // The y-axis label, turned to read upwards.
  double lx = left + 20, ly = (y0 + y1) / 2;
  svg += "<text class=\"ylabel\" x=\"" + px(lx) + "\" y=\"" + px(ly) +
         "\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 " + px(lx) + " " +
         px(ly) + ")\">" + axisLabel + "</text>\n";
  svg += "<text class=\"xlabel\" x=\"" + px((x0 + x1) / 2) + "\" y=\"" + px(y1 + 44) +
         "\" text-anchor=\"middle\" font-size=\"13\">epoch</text>\n";
  if (!(lo <= hi)) { // nothing finite to draw
    svg += "<rect class=\"frame\" x=\"" + px(x0) + "\" y=\"" + px(y0) + "\" width=\"" +
           px(x1 - x0) + "\" height=\"" + px(y1 - y0) +
           "\" fill=\"none\" stroke=\"#444444\" stroke-width=\"1\"/>\n";
    svg += "<text class=\"nodata\" x=\"" + px((x0 + x1) / 2) + "\" y=\"" + px((y0 + y1) / 2) +
           "\" text-anchor=\"middle\" fill=\"#777777\" font-size=\"14\">no " + name +
           " recorded</text>\n</g>\n";
    return;
  }
  axisRange(lo, hi, accuracy);
  Ticks yt = makeTicks(lo, hi, 5, 0.0);

  double e0 = double(records.front().epoch), e1 = double(records.back().epoch);
  for (const EpochRecord &r : records) {
    e0 = std::min(e0, double(r.epoch));
    e1 = std::max(e1, double(r.epoch));
  }
  if (e0 == e1) { // one epoch: one point in the middle
    e0 -= 1;
    e1 += 1;
  }
  Ticks xt = makeTicks(e0, e1, 6, 1.0);

  // Positions from halves, which cannot overflow even for ranges near ±1e308.
  auto fraction = [](double v, const Ticks &t) {
    return (v / 2 - t.lo() / 2) / (t.hi() / 2 - t.lo() / 2);
  };
  auto X = [&](double e) { return x0 + kInset + fraction(e, xt) * (x1 - x0 - 2 * kInset); };
  auto Y = [&](double v) { return y1 - kInset - fraction(v, yt) * (y1 - y0 - 2 * kInset); };

  // Grid, frame, ticks and their labels.
  svg += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (int64_t k = yt.k0; k <= yt.k1; ++k)
    svg += "<line x1=\"" + px(x0) + "\" y1=\"" + px(Y(yt.value(k))) + "\" x2=\"" + px(x1) +
           "\" y2=\"" + px(Y(yt.value(k))) + "\"/>\n";
  for (int64_t k = xt.k0; k <= xt.k1; ++k)
    svg += "<line x1=\"" + px(X(xt.value(k))) + "\" y1=\"" + px(y0) + "\" x2=\"" +
           px(X(xt.value(k))) + "\" y2=\"" + px(y1) + "\"/>\n";
  svg += "</g>\n";
  svg += "<rect class=\"frame\" x=\"" + px(x0) + "\" y=\"" + px(y0) + "\" width=\"" + px(x1 - x0) +
         "\" height=\"" + px(y1 - y0) +
         "\" fill=\"none\" stroke=\"#444444\" stroke-width=\"1\"/>\n";
  svg += "<g class=\"yticks\" font-size=\"12\" text-anchor=\"end\">\n";
  for (int64_t k = yt.k0; k <= yt.k1; ++k) {
    double y = Y(yt.value(k));
    svg += "<line x1=\"" + px(x0 - 5) + "\" y1=\"" + px(y) + "\" x2=\"" + px(x0) + "\" y2=\"" +
           px(y) + "\" stroke=\"#444444\"/>";
    svg += "<text class=\"ytick\" x=\"" + px(x0 - 8) + "\" y=\"" + px(y + 4) + "\">" +
           tickLabel(yt, yt.value(k)) + "</text>\n";
  }
  svg += "</g>\n<g class=\"xticks\" font-size=\"12\" text-anchor=\"middle\">\n";
  for (int64_t k = xt.k0; k <= xt.k1; ++k) {
    double x = X(xt.value(k));
    svg += "<line x1=\"" + px(x) + "\" y1=\"" + px(y1) + "\" x2=\"" + px(x) + "\" y2=\"" +
           px(y1 + 5) + "\" stroke=\"#444444\"/>";
    svg += "<text class=\"xtick\" x=\"" + px(x) + "\" y=\"" + px(y1 + 20) + "\">" +
           tickLabel(xt, xt.value(k)) + "</text>\n";
  }
  svg += "</g>\n";

  // The series: one path each, broken where a value is missing, and
  // markers (all of them for up to 60 epochs; beyond, only where a point
  // has no neighbour and the line would not show it).
  for (size_t s = 0; s < 3; ++s) {
    const std::vector<double> &v = data[s];
    if (!anyFinite(v))
      continue;
    const Series &series = kSeries[s];
    std::string d, marks;
    bool drawing = false, allMarkers = records.size() <= 60;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        drawing = false;
        continue;
      }
      double x = X(double(records[i].epoch)), y = Y(v[i]);
      d += (d.empty() ? "M" : drawing ? " L" : " M") + px(x) + "," + px(y);
      drawing = true;
      bool isolated =
          (i == 0 || !std::isfinite(v[i - 1])) && (i + 1 == v.size() || !std::isfinite(v[i + 1]));
      if (allMarkers || isolated)
        marks += marker(series, x, y);
    }
    svg += "<path class=\"series " + std::string(series.name) + "\" d=\"" + d +
           "\" fill=\"none\" stroke=\"" + series.color +
           "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n";
    svg += "<g class=\"markers " + std::string(series.name) + "\" fill=\"" + series.color + "\">" +
           marks + "</g>\n";
  }
  svg += "</g>\n";
}

/// Writes `content` to a new file beside `path`, then renames it over
/// `path`. On failure nothing is left behind and `path` is untouched.
bool writeAtomically(const std::string &path, const std::string &content, std::string &error) {
  static std::atomic<unsigned> counter{0};
  auto fail = [&](int err) {
    error = path + ": cannot be written: " + std::strerror(err);
    return false;
  };
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    temp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      return fail(errno);
  }
  if (fd < 0)
    return fail(EEXIST);
  const char *p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(temp.c_str());
      return fail(err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return fail(err);
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return fail(err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return fail(err);
  }
  return true;
}

} // namespace

std::vector<double> niceTicks(double lo, double hi, int target, double minStep) {
  Ticks t = makeTicks(lo, hi, target, minStep);
  std::vector<double> v;
  for (int64_t k = t.k0; k <= t.k1; ++k)
    v.push_back(t.value(k));
  return v;
}

std::string curvesSvg(const std::vector<EpochRecord> &records, const std::string &title) {
  std::string t = escapeXml(title);
  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" height=\"440\" "
         "viewBox=\"0 0 1000 440\" "
         "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" fill=\"#222222\">\n";
  svg += "<title>" + t + "</title>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  svg += "<text class=\"title\" x=\"500.00\" y=\"30.00\" text-anchor=\"middle\" "
         "font-size=\"18\" font-weight=\"bold\">" +
         t + "</text>\n";

  // The legend: the splits with a finite value in either panel, centred
  // under the title. Label widths are estimated (7 px a character).
  std::vector<const Series *> shown;
  for (const Series &s : kSeries)
    if (!records.empty() &&
        (anyFinite(values(records, s, false)) || anyFinite(values(records, s, true))))
      shown.push_back(&s);
  double width = 0;
  for (const Series *s : shown)
    width += 34 + 7.0 * std::strlen(s->name) + (s == shown.back() ? 0 : 24);
  double x = kWidth / 2 - width / 2, y = 56;
  svg += "<g class=\"legend\" font-size=\"13\">\n";
  for (const Series *s : shown) {
    svg += "<g class=\"legend-item " + std::string(s->name) + "\">";
    svg += "<line x1=\"" + px(x) + "\" y1=\"" + px(y) + "\" x2=\"" + px(x + 26) + "\" y2=\"" +
           px(y) + "\" stroke=\"" + s->color + "\" stroke-width=\"2\"/>";
    svg += "<g fill=\"" + std::string(s->color) + "\">" + marker(*s, x + 13, y) + "</g>";
    svg += "<text x=\"" + px(x + 34) + "\" y=\"" + px(y + 4.5) + "\">" + s->name + "</text>";
    svg += "</g>\n";
    x += 34 + 7.0 * std::strlen(s->name) + 24;
  }
  svg += "</g>\n";
  if (!records.empty()) {
    panel(svg, records, false, 0);
    panel(svg, records, true, kPanelWidth);
  }
  svg += "</svg>\n";
  return svg;
}

bool writeCurvesSvg(const std::string &path, const std::vector<EpochRecord> &records,
                    const std::string &title, std::string &error) {
  if (records.empty()) {
    error = path + ": no epochs to plot";
    return false;
  }
  for (size_t i = 1; i < records.size(); ++i)
    if (records[i].epoch <= records[i - 1].epoch) {
      error = path + ": epochs must increase, but epoch " + std::to_string(records[i].epoch) +
              " follows epoch " + std::to_string(records[i - 1].epoch);
      return false;
    }
  return writeAtomically(path, curvesSvg(records, title), error);
}

} // namespace nnc_rt
