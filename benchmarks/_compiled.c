/* A compiled eager wrapper builder, for the decode benchmark only (never shipped, never imported
 * by the package).
 *
 * Builder(cls, plan) builds instances of a generated wrapper class straight from protobuf
 * messages: it allocates each instance and stores every field into its slot, with the same
 * presence tests and conversions as the generated _from_proto, and no Python code per element.
 * The benchmark uses it to measure what wrapping costs when nothing of it is interpreted - the
 * lowest a compiled accelerator of the same wrappers could go.
 *
 * plan: a tuple of entries (slot, name, mode, conversion, absent, table):
 *   slot        the member descriptor of the field's slot (a writable object slot of cls);
 *   name        the protobuf attribute (str);
 *   mode        0 required: the value as read;
 *               1 value first: a value that reads as absent (absent, or falsy when absent is None)
 *                 is asked for presence ("name in m"), and is None when not there;
 *   conversion  0 none; 1 text: a value that is not str goes through table(value);
 *               2 table: the value is looked up in the dict table (KeyError if missing).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

enum { MODE_REQUIRED = 0, MODE_VALUE_FIRST = 1 };
enum { CONV_NONE = 0, CONV_TEXT = 1, CONV_TABLE = 2 };

typedef struct {
    Py_ssize_t offset;
    PyObject *name;
    int mode;
    int conv;
    PyObject *absent;
    PyObject *table;
} FieldPlan;

typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    Py_ssize_t nfields;
    FieldPlan *fields;
} Builder;

static void
builder_drop_fields(Builder *b)
{
    if (b->fields != NULL) {
        for (Py_ssize_t i = 0; i < b->nfields; i++) {
            Py_CLEAR(b->fields[i].name);
            Py_CLEAR(b->fields[i].absent);
            Py_CLEAR(b->fields[i].table);
        }
        PyMem_Free(b->fields);
        b->fields = NULL;
    }
    b->nfields = 0;
}

static int
builder_traverse(Builder *b, visitproc visit, void *arg)
{
    Py_VISIT(b->cls);
    for (Py_ssize_t i = 0; i < b->nfields; i++) {
        Py_VISIT(b->fields[i].name);
        Py_VISIT(b->fields[i].absent);
        Py_VISIT(b->fields[i].table);
    }
    return 0;
}

static int
builder_clear(Builder *b)
{
    Py_CLEAR(b->cls);
    builder_drop_fields(b);
    return 0;
}

static void
builder_dealloc(Builder *b)
{
    PyObject_GC_UnTrack(b);
    builder_clear(b);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static int
builder_init(Builder *b, PyObject *args, PyObject *kwds)
{
    PyTypeObject *cls;
    PyObject *plan;
    static char *kwlist[] = {"cls", "plan", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!:Builder", kwlist, &PyType_Type, &cls,
                                     &PyTuple_Type, &plan)) {
        return -1;
    }
    builder_clear(b);
    Py_ssize_t n = PyTuple_GET_SIZE(plan);
    b->fields = PyMem_Calloc(n > 0 ? n : 1, sizeof(FieldPlan));
    if (b->fields == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->nfields = n;
    Py_INCREF(cls);
    b->cls = cls;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *slot, *name, *absent, *table;
        int mode, conv;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(plan, i), "OUiiOO:plan entry", &slot, &name, &mode,
                              &conv, &absent, &table)) {
            return -1;
        }
        if (!Py_IS_TYPE(slot, &PyMemberDescr_Type)) {
            PyErr_SetString(PyExc_TypeError, "plan entry: the slot is not a member descriptor");
            return -1;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)slot)->d_member;
        PyTypeObject *owner = ((PyDescrObject *)slot)->d_type;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY) || !PyType_IsSubtype(cls, owner)) {
            PyErr_SetString(PyExc_TypeError, "plan entry: not a writable object slot of the class");
            return -1;
        }
        if (mode < MODE_REQUIRED || mode > MODE_VALUE_FIRST || conv < CONV_NONE || conv > CONV_TABLE) {
            PyErr_SetString(PyExc_ValueError, "plan entry: unknown mode or conversion");
            return -1;
        }
        if (conv == CONV_TABLE && !PyDict_CheckExact(table)) {
            PyErr_SetString(PyExc_TypeError, "plan entry: a table conversion needs a dict");
            return -1;
        }
        if (conv == CONV_TEXT && !PyCallable_Check(table)) {
            PyErr_SetString(PyExc_TypeError, "plan entry: a text conversion needs a callable");
            return -1;
        }
        FieldPlan *f = &b->fields[i];
        f->offset = member->offset;
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        f->name = name;
        f->mode = mode;
        f->conv = conv;
        Py_INCREF(absent);
        f->absent = absent;
        Py_INCREF(table);
        f->table = table;
    }
    return 0;
}

/* The value the wrapper holds for one field of m (a new reference), or NULL with an error set. */
static PyObject *
field_value(const FieldPlan *f, PyObject *m)
{
    PyObject *v = PyObject_GetAttr(m, f->name);
    if (v == NULL) {
        return NULL;
    }
    if (f->mode == MODE_VALUE_FIRST) {
        int reads_absent;
        if (v == f->absent) {
            reads_absent = 1;
        }
        else if (f->absent == Py_None) {
            int truth = PyObject_IsTrue(v);
            if (truth < 0) {
                Py_DECREF(v);
                return NULL;
            }
            reads_absent = !truth;
        }
        else {
            reads_absent = PyObject_RichCompareBool(v, f->absent, Py_EQ);
            if (reads_absent < 0) {
                Py_DECREF(v);
                return NULL;
            }
        }
        if (reads_absent) {
            int present = PySequence_Contains(m, f->name);
            if (present < 0) {
                Py_DECREF(v);
                return NULL;
            }
            if (!present) {
                Py_DECREF(v);
                Py_RETURN_NONE;
            }
        }
    }
    if (f->conv == CONV_TEXT && !PyUnicode_CheckExact(v)) {
        PyObject *text = PyObject_CallOneArg(f->table, v);
        Py_DECREF(v);
        return text;
    }
    if (f->conv == CONV_TABLE) {
        PyObject *member = PyDict_GetItemWithError(f->table, v);
        if (member == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetObject(PyExc_KeyError, v);
            }
            Py_DECREF(v);
            return NULL;
        }
        Py_INCREF(member);
        Py_DECREF(v);
        return member;
    }
    return v;
}

static PyObject *
build_one(const Builder *b, PyObject *m)
{
    PyObject *o = b->cls->tp_alloc(b->cls, 0);
    if (o == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->nfields; i++) {
        const FieldPlan *f = &b->fields[i];
        PyObject *v = field_value(f, m);
        if (v == NULL) {
            Py_DECREF(o);
            return NULL;
        }
        PyObject **slot = (PyObject **)((char *)o + f->offset);
        Py_XSETREF(*slot, v);
    }
    return o;
}

static PyObject *
builder_many(Builder *b, PyObject *items)
{
    if (b->cls == NULL) {
        PyErr_SetString(PyExc_ValueError, "Builder was not initialised");
        return NULL;
    }
    PyObject *it = PyObject_GetIter(items);
    if (it == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(it);
        return NULL;
    }
    PyObject *m;
    while ((m = PyIter_Next(it)) != NULL) {
        PyObject *o = build_one(b, m);
        Py_DECREF(m);
        if (o == NULL || PyList_Append(out, o) < 0) {
            Py_XDECREF(o);
            Py_DECREF(out);
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(o);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *result = PyList_AsTuple(out);
    Py_DECREF(out);
    return result;
}

static PyMethodDef builder_methods[] = {
    {"many", (PyCFunction)builder_many, METH_O, "many(items) -> tuple: each message wrapped."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_ctrader_bench_compiled.Builder",
    .tp_basicsize = sizeof(Builder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Builder(cls, plan): wraps protobuf messages as instances of cls.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)builder_init,
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_traverse = (traverseproc)builder_traverse,
    .tp_clear = (inquiry)builder_clear,
    .tp_methods = builder_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ctrader_bench_compiled", NULL, -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__ctrader_bench_compiled(void)
{
    if (PyType_Ready(&BuilderType) < 0) {
        return NULL;
    }
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) {
        return NULL;
    }
    Py_INCREF(&BuilderType);
    if (PyModule_AddObject(mod, "Builder", (PyObject *)&BuilderType) < 0) {
        Py_DECREF(&BuilderType);
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
