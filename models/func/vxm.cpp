#include "func/vxm.h"
