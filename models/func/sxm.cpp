#include "func/sxm.h"
