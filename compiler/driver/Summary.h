// Summary.h — `nnc FILE --check`: the model summary, like Keras's
// model.summary(), followed by the resolved settings.
#pragma once

#include "frontend/Program.h"

#include <ostream>

namespace nnc {

void printSummary(const Program &program, std::ostream &out);

} // namespace nnc
