#include "func/mxm.h"
