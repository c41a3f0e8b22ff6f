"""Which globals a pickle may import: known dangerous, known safe, or unknown.

A pickle names every callable and class it needs as a *global*, a
``(module, name)`` pair that the unpickler imports. That is the whole attack
surface: a pickle can only call what it can import. This module decides, for
one global, whether it is

- **dangerous**: it runs code, starts processes, resolves other names, writes
  files, opens connections, loads native code or another pickle. Always
  blocked, whatever ``pickles.allow`` says; a file that needs one can be
  trusted as a whole, by its SHA-256 digest, or the one global allowed by an
  explicit, confirmed override (``pickles.allow_dangerous``, ``%mlsecops allow
  --i-understand-this-runs-code``), which every provenance record lists;
- **safe**: reviewed, and used by benign artefacts; or allowed by name in the
  policy (``[pickles] allow = ["module:name"]``);
- **unknown**: anything else (your own classes, an unusual library). The policy
  decides: warn (default), block or allow.

Names are normalised first (:func:`normalize`): Python 2 module and builtin
names through the standard library's own ``_compat_pickle`` tables (the ones
the unpickler applies), and the renamed packages ``numpy.core`` ->
``numpy._core``, ``torch.tensor`` -> ``torch._tensor``, ``dill.dill`` ->
``dill._dill``. Dotted names (protocol 4 resolves ``("pathlib", "os.system")``
by attribute traversal to ``os.system``) are checked segment by segment, and
at run time on the object they really resolve to.

How the lists were built
------------------------
Deny list: the union of the unsafe-globals lists of picklescan 1.0.5
(``scanner._unsafe_globals``), fickling 0.1.12 (``fickle.UNSAFE_IMPORTS``) and
modelscan 0.8.8 (``settings.unsafe_globals``), narrowed from whole modules to
exact names where a module also holds benign value types (``uuid``,
``functools``, ``types``, ``dill._dill``, ``multiprocessing``, ``torch.*``),
and extended with published gadgets those lists miss: numpy 1.x's
``_ufunc_reconstruct`` (import + getattr), ``dataclasses._create_fn``,
``typing.ForwardRef._evaluate`` and ``sympy.sympify`` (eval), ``numexpr.evaluate``
(CVE-2023-39631), ``torch.fx.graph_module.reduce_graph_module`` (exec of
pickled source), ``torch.ops.load_library`` (native code), dill's
``_load_type``/``_import_module``/``_eval_repr``, pyarrow's ``foreign_buffer``
(raw memory), IPython's shell (a pickle can run cells) and this package itself
(a pickle could switch the guard off).

Allow list: evidence, not belief. Benign artefacts were generated with the
installed libraries (numpy 2.4, pandas 3.1 with pyarrow, scikit-learn 1.9,
torch 2.13, joblib 1.6, dill 0.4, cloudpickle 3.1, scipy 1.17; Python 3.11):
stdlib values (datetimes, decimals, fractions, UUIDs, paths, collections) at
protocols 0 to 5; numpy arrays of every dtype family, masked arrays, random
generators, ``np.save``/``np.savez``; pandas frames with every column dtype,
indexes and offsets, through ``pickle`` and ``read_pickle`` (each compression);
about 80 fitted scikit-learn estimators, pipelines and searches, through
``pickle`` and ``joblib``; torch state dicts, checkpoints with optimizer and
scheduler state, and full modules (about 75 layer types), through
``torch.save`` (zip and legacy formats); dill and cloudpickle data objects;
results of joblib, multiprocessing and concurrent.futures workers. Every
global they resolved was recorded with a ``pickle.find_class`` audit hook and
reviewed: an entry is here because a benign artefact needed it and building
it cannot run code beyond calling other vetted globals. Added without a
generated artefact: torch's own ``weights_only`` allow list (storage, tensor
and dtype names, which torch resolves without ``find_class``), the pandas < 3
spellings of the same classes (older pandas names classes by their defining
module), siblings of evidenced classes (offsets, nullable dtypes, losses,
kernels, metrics, CV splitters, layer variants), the ``pathlib._local``
spelling of Python 3.13, and numpy's ufuncs and scalar types (pure elementwise
math and number constructors). Every entry but the Python 3.13 spelling
resolves in the environment above (a test checks it, against typos).
``tests/test_pickle_globals.py`` regenerates artefacts and checks that every
global they use is still classified safe.

What the allow list deliberately leaves out: ``builtins.type``,
``functools.partial``, and three gadgets benign files need, which stay
dangerous *by name* and are judged by their arguments instead
(:data:`ARGUMENT_CHECKED`, :func:`classify_call`):

- ``builtins.getattr``: pandas (through ``ZoneInfo.__reduce__``) pickles every
  named time zone as ``getattr(zoneinfo.ZoneInfo, "_unpickle")``;
- ``dill._dill._load_type``: dill, and joblib once dill is imported, write
  ``_load_type("slice")`` in every data frame; it also hands out ``CodeType``;
- ``torch.storage._load_from_bytes``: a tensor pickled with ``pickle``/``joblib``
  rather than ``torch.save`` is a nested ``torch.load`` of a bytes constant.

The static scanner sees arguments: a use of one of these is safe only when
every occurrence of the global in the stream is called (REDUCE) at once with
constant arguments that pass :func:`classify_call`. The runtime hook sees names
only: it lets them through for a load whose pre-load scan of the same content
found them in safe uses alone (``runtime_guard``), and dill's ``_load_type`` is
also neutralised while the guard is on (it hands out :data:`VALUE_TYPES` only).
"""

from __future__ import annotations

import _compat_pickle
import dataclasses
import sys
import types
from collections.abc import Iterable, Iterator
from inspect import getattr_static
from typing import TYPE_CHECKING

from mlsecops_jupyter.pickles.verdicts import CallArgument, EmbeddedFile, GlobalRef, GlobalVerdict

if TYPE_CHECKING:
    from mlsecops_jupyter.policy import Policy

Pair = tuple[str, str]

# --- building the lists --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GlobalGroup:
    """Globals that share one reason for being dangerous (or safe).

    ``modules`` (deny groups only) are modules whose every name, and every
    submodule, is dangerous.
    """

    reason: str
    globals: frozenset[Pair] = frozenset()
    modules: frozenset[str] = frozenset()


def _names(module: str, names: str) -> frozenset[Pair]:
    """``(module, name)`` for each white-space separated name (data stays compact)."""
    return frozenset((module, name) for name in names.split())


def _in_each(modules: str, names: str) -> frozenset[Pair]:
    """The same names under several modules (a class and where it is re-exported)."""
    return frozenset().union(*(_names(module, names) for module in modules.split()))


def _methods(modules: str, classes: str, methods: str) -> frozenset[Pair]:
    """``Class.method`` dotted names, which protocol 4 reaches by attribute traversal."""
    dotted = " ".join(f"{cls}.{method}" for cls in classes.split() for method in methods.split())
    return _in_each(modules, dotted)


def _suffixed(stems: str, suffix: str) -> str:
    return " ".join(stem + suffix for stem in stems.split())


def _group(reason: str, *parts: frozenset[Pair], modules: str = "") -> GlobalGroup:
    return GlobalGroup(reason, frozenset().union(*parts), frozenset(modules.split()))


# --- dangerous -----------------------------------------------------------------------------

_PATH_MODULES = "pathlib pathlib._local"  # Python 3.13 moved the classes to pathlib._local
_PATH_CLASSES = "Path PosixPath WindowsPath"
_PANDAS_WRITERS = """to_pickle to_csv to_excel to_json to_parquet to_feather to_hdf to_sql
    to_stata to_html to_xml to_orc to_clipboard to_latex to_markdown to_string"""
_PANDAS_READERS = """read_csv read_table read_fwf read_json read_html read_xml read_excel
    read_parquet read_feather read_orc read_sas read_spss read_stata read_hdf read_sql
    read_sql_query read_sql_table read_clipboard"""

DANGEROUS_GROUPS: tuple[GlobalGroup, ...] = (
    _group(
        "runs Python code given as text or bytecode",
        _names("builtins", "eval exec compile execfile apply __build_class__"),
        _names("types", "FunctionType LambdaType CodeType MethodType new_class"),
        # exec() of generated source, eval() of annotation strings
        _names("dataclasses", "_create_fn _FuncBuilder"),
        _names("typing", "ForwardRef._evaluate ForwardRef.evaluate get_type_hints _eval_type"),
        _names("annotationlib", "ForwardRef.evaluate call_evaluate_function"),
        # CVE-2023-39631 (numexpr), eval/exec of expressions (sympy), compiled C (Cython)
        _names("numexpr", "evaluate"),
        _names("numexpr.necompiler", "evaluate"),
        _names("sympy", "sympify parse_expr lambdify"),
        _names("sympy.core.sympify", "sympify"),
        _names("sympy.parsing.sympy_parser", "parse_expr eval_expr"),
        _names("sympy.utilities.lambdify", "lambdify"),
        _names("Cython", "inline"),
        _names("Cython.Build.Inline", "cython_inline"),
        _names("pandas", "eval DataFrame.eval DataFrame.query"),
        _methods("pandas.core.frame", "DataFrame", "eval query"),
        # Keras Lambda layers carry marshalled bytecode; TensorFlow wraps Python calls
        _names("keras.layers", "Lambda"),
        _names("keras.src.layers.core.lambda_layer", "Lambda"),
        _names("tensorflow.keras.layers", "Lambda"),
        _names("tensorflow", "py_function numpy_function"),
        # torch.fx rebuilds a GraphModule by exec() of source text stored in the pickle
        _names(
            "torch.fx.graph_module",
            """reduce_graph_module reduce_package_graph_module reduce_deploy_graph_module
            _forward_from_src _exec_with_source _deserialize_graph_module""",
        ),
        _names("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
        # dill rebuilds functions and classes from code objects
        _names(
            "dill._dill",
            "_create_code _create_function _create_type _create_cell _eval_repr _unmarshal "
            "_create_namedtuple",
        ),
        modules="""code codeop runpy timeit profile cProfile pdb bdb trace doctest marshal
            idlelib lib2to3 test unittest tkinter _tkinter turtle logging.config numpy.testing
            numpy.f2py numpy.distutils distutils setuptools pandas.core.computation
            torch._dynamo torch._inductor torch.jit torch.package torch.utils.cpp_extension
            torch.utils.bottleneck torch.testing._internal cloudpickle
            joblib.externals.cloudpickle srsly.cloudpickle dill.source dill._shims""",
    ),
    _group(
        "starts processes, sends signals or takes over the interpreter",
        # uuid's node lookups run ifconfig, ip, arp, netstat... (_get_command_stdout)
        _names(
            "uuid",
            """_get_command_stdout _popen _find_mac_near_keyword _find_mac_under_heading
            _ifconfig_getnode _ip_getnode _arp_getnode _lanscan_getnode _netstat_getnode
            _ipconfig_getnode _netbios_getnode _unix_getnode _windll_getnode
            _load_system_functions getnode uuid1""",
        ),
        _names("imaplib", "IMAP4_stream"),
        _names("builtins", "breakpoint input help exit quit"),
        modules="""os posix nt subprocess _posixsubprocess pty pipes commands popen2 asyncio
            signal _signal platform _osx_support _aix_support _pyrepl _bootsubprocess
            _winapi msvcrt winreg webbrowser antigravity sys gc resource fcntl termios tty
            ensurepip venv pip pexpect sh plumbum invoke multiprocessing.spawn
            multiprocessing.popen_fork multiprocessing.popen_forkserver
            multiprocessing.popen_spawn_posix multiprocessing.popen_spawn_win32
            multiprocessing.forkserver multiprocessing.util multiprocessing.resource_tracker
            joblib.externals.loky.backend torch.utils.collect_env IPython ipykernel
            jupyter_client jupyter_server""",
    ),
    _group(
        "imports modules or looks up attributes by name, reaching every other global",
        _names("builtins", "getattr setattr delattr hasattr __import__ globals locals vars"),
        _names("functools", "partial partialmethod reduce update_wrapper wraps"),
        # numpy 1.x ufunc pickles: __import__(module) then getattr(name)
        _names("numpy._core", "_ufunc_reconstruct"),
        _names("numpy._core._internal", "_ufunc_reconstruct"),
        _names(
            "dill._dill",
            "_import_module _get_attr _getattr _getattribute _load_type _setattr _delattr",
        ),
        _names("torch._utils", "_import_dotted_name"),
        modules="""importlib importlib_metadata importlib_resources _frozen_importlib
            _frozen_importlib_external _imp imp zipimport pkgutil pkg_resources site pydoc
            inspect operator _operator""",
    ),
    _group(
        "creates, changes or deletes files",
        _names("builtins", "open"),
        _in_each("io _io", "open FileIO open_code"),
        _names("codecs", "open"),
        _names("gzip", "open GzipFile"),
        _names("bz2", "open BZ2File"),
        _names("lzma", "open LZMAFile"),
        _names("logging", "FileHandler"),
        _methods(
            _PATH_MODULES,
            _PATH_CLASSES,
            """write_text write_bytes open touch mkdir unlink rmdir rename replace symlink_to
            hardlink_to link_to chmod lchmod copy move""",
        ),
        _names("numpy", "save savez savez_compressed savetxt memmap ndarray.tofile ndarray.dump"),
        _in_each("numpy.lib.npyio numpy.lib._npyio_impl", "save savez savez_compressed savetxt"),
        _names("numpy._core.memmap", "memmap"),
        _in_each("numpy.lib.format numpy.lib._format_impl", "open_memmap write_array"),
        _in_each("pandas pandas.io.pickle", "to_pickle"),
        _methods("pandas", "DataFrame Series", _PANDAS_WRITERS),
        _methods("pandas.core.frame", "DataFrame", _PANDAS_WRITERS),
        _methods("pandas.core.series", "Series", _PANDAS_WRITERS),
        _methods("pandas.core.generic", "NDFrame", _PANDAS_WRITERS),
        _in_each("joblib joblib.numpy_pickle", "dump"),
        _in_each("torch torch.serialization", "save"),
        _names("dill", "dump dump_module dump_session"),
        _names("dill._dill", "_create_filehandle"),
        _in_each("h5py h5py._hl.files", "File"),
        _names("pyarrow.lib", "OSFile MemoryMappedFile memory_map create_memory_map output_stream"),
        modules="""shutil tempfile fileinput tarfile zipfile sqlite3 _sqlite3 dbm shelve mmap
            logging.handlers py_compile compileall dill.temp pyarrow.parquet pyarrow._parquet
            pyarrow.dataset pyarrow._dataset pyarrow.csv pyarrow._csv pyarrow.feather
            pyarrow._feather pyarrow.orc pyarrow._orc pyarrow.ipc""",
    ),
    _group(
        "opens network connections or fetches URLs",
        _names("pandas", _PANDAS_READERS),
        # numpy's text loaders go through DataSource, which downloads URLs
        _in_each(
            "numpy numpy.lib.npyio numpy.lib._npyio_impl", "loadtxt genfromtxt fromregex DataSource"
        ),
        _names(
            "sklearn.datasets",
            """fetch_openml fetch_california_housing fetch_20newsgroups
            fetch_20newsgroups_vectorized fetch_covtype fetch_kddcup99 fetch_lfw_pairs
            fetch_lfw_people fetch_olivetti_faces fetch_rcv1 fetch_species_distributions
            fetch_file""",
        ),
        _names("tensorflow.io", "read_file write_file"),
        _names("tensorflow.raw_ops", "ReadFile WriteFile"),
        modules="""socket _socket ssl _ssl select selectors http.client httplib http.server
            http.cookiejar urllib.request urllib2 ftplib smtplib smtpd telnetlib poplib
            imaplib nntplib xmlrpc socketserver asyncore asynchat requests urllib3 httpx
            aiohttp websocket websockets paramiko pycurl fsspec huggingface_hub
            numpy.lib._datasource torch.hub torch.distributed.rpc multiprocessing.connection
            multiprocessing.managers multiprocessing.reduction multiprocessing.resource_sharer
            multiprocessing.shared_memory pandas.io.clipboard pyarrow.fs pyarrow._fs
            pyarrow._s3fs pyarrow._gcsfs pyarrow._hdfs pyarrow._azurefs pyarrow.flight
            pyarrow._flight""",
    ),
    _group(
        "loads native code or reads and writes raw memory",
        _names("dill._dill", "_create_capsule"),
        _names("pyarrow.lib", "foreign_buffer"),
        _methods(
            "pyarrow pyarrow.lib",
            "Array ChunkedArray RecordBatch RecordBatchReader Schema Field DataType Table",
            "_import_from_c _import_from_c_capsule _import_from_c_device",
        ),
        _names("torch", "ops.load_library classes.load_library"),
        _names("torch._ops", "_Ops.load_library"),
        _names("torch._classes", "_Classes.load_library"),
        _names(
            "torch._C",
            """_load_for_lite_interpreter _load_for_lite_interpreter_from_buffer
            import_ir_module import_ir_module_from_buffer""",
        ),
        modules="ctypes _ctypes cffi numpy.ctypeslib pyarrow.cffi pyarrow.jvm",
    ),
    _group(
        "loads another pickle or model file, which the pre-load scan never saw",
        _in_each("torch torch.serialization", "load"),
        _names("torch.serialization", "_load _legacy_load"),
        _in_each("torch.storage torch._C", "_load_from_bytes"),
        _names("torch.utils._config_module", "ConfigModule.load_config"),
        _names("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
        _in_each("numpy numpy.lib.npyio numpy.lib._npyio_impl", "load"),
        _in_each("numpy.lib.format numpy.lib._format_impl", "read_array"),
        _in_each("pandas pandas.io.pickle", "read_pickle"),
        _names("pandas.compat.pickle_compat", "load loads Unpickler"),
        _in_each("joblib joblib.numpy_pickle", "load"),
        _names("dill", "load loads load_module load_module_asdict load_session copy"),
        _names("dill._dill", "load loads copy"),
        _in_each("keras.models keras.saving tensorflow.keras.models", "load_model"),
        modules="pickle _pickle dill.session",
    ),
    _group(
        "would switch off or bypass these guardrails",
        modules="mlsecops_jupyter",
    ),
)
"""Known-dangerous globals, by reason. Dangerous always wins over any allow list."""


# --- safe ----------------------------------------------------------------------------------

_TORCH_STORAGES = _suffixed(
    "Double Float Half BFloat16 Long Int Short Char Byte Bool ComplexDouble ComplexFloat",
    "Storage",
)
_TORCH_QUANTIZED_STORAGES = _suffixed("QUInt8 QInt8 QInt32 QUInt4x2 QUInt2x4", "Storage")
_TORCH_TENSORS = _suffixed("Double Float Half BFloat16 Long Int Short Char Byte Bool", "Tensor")
_TORCH_DTYPES = """float16 float32 float64 bfloat16 half float double complex32 complex64
    complex128 cfloat cdouble int8 int16 int32 int64 short int long uint8 uint16 uint32 uint64
    bool qint8 qint32 quint8 quint4x2 quint2x4 float8_e4m3fn float8_e5m2 float8_e4m3fnuz
    float8_e5m2fnuz float8_e8m0fnu bits8 bits16 bits1x8 bits2x4 bits4x2 per_tensor_affine
    per_channel_affine per_channel_affine_float_qparams per_tensor_symmetric
    per_channel_symmetric"""
# Every numpy ufunc: pure elementwise math, pickled by name (FunctionTransformer(np.log1p)).
_NUMPY_UFUNCS = """abs absolute acos acosh add arccos arccosh arcsin arcsinh arctan arctan2
    arctanh asin asinh atan atan2 atanh bitwise_and bitwise_count bitwise_invert
    bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor cbrt ceil conj
    conjugate copysign cos cosh deg2rad degrees divide divmod equal exp exp2 expm1 fabs
    float_power floor floor_divide fmax fmin fmod frexp gcd greater greater_equal heaviside
    hypot invert isfinite isinf isnan isnat lcm ldexp left_shift less less_equal log log10
    log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or logical_xor matmul
    matvec maximum minimum mod modf multiply negative nextafter not_equal positive pow power
    rad2deg radians reciprocal remainder right_shift rint sign signbit sin sinh spacing sqrt
    square subtract tan tanh true_divide trunc vecdot vecmat"""
_NUMPY_SCALARS = """float16 float32 float64 longdouble half single double int8 int16 int32
    int64 intp uint8 uint16 uint32 uint64 uintp bool_ bool complex64 complex128 clongdouble
    str_ bytes_ void datetime64 timedelta64 object_"""
_NULLABLE_DTYPES = """Int8Dtype Int16Dtype Int32Dtype Int64Dtype UInt8Dtype UInt16Dtype
    UInt32Dtype UInt64Dtype Float32Dtype Float64Dtype BooleanDtype StringDtype"""
_PANDAS_OFFSETS = """DateOffset Day Hour Minute Second Milli Micro Nano BusinessDay Week
    MonthEnd MonthBegin BusinessMonthEnd BusinessMonthBegin QuarterEnd QuarterBegin YearEnd
    YearBegin"""
_STANDARD_EXCEPTIONS = """Exception ArithmeticError AssertionError AttributeError EOFError
    FileNotFoundError FloatingPointError ImportError IndexError KeyError LookupError
    MemoryError ModuleNotFoundError NotImplementedError OSError OverflowError RecursionError
    RuntimeError StopIteration TimeoutError TypeError UnicodeDecodeError UnicodeEncodeError
    ValueError ZeroDivisionError Warning UserWarning RuntimeWarning"""

SAFE_GROUPS: tuple[GlobalGroup, ...] = (
    _group(
        "a standard-library value type",
        _names(
            "builtins",
            """set frozenset bytearray complex slice range list dict tuple int float str bytes
            bool object Ellipsis NotImplemented""",
        ),
        _names("collections", "OrderedDict defaultdict Counter deque"),
        _names("datetime", "date datetime time timedelta timezone"),
        _names("decimal", "Decimal"),
        _names("fractions", "Fraction"),
        _names("uuid", "UUID"),
        _names("zoneinfo", "ZoneInfo"),
        # ZoneInfo.__reduce__ is (ZoneInfo._unpickle, (key, from_cache)), reached as
        # getattr(ZoneInfo, "_unpickle") (pandas tz-aware columns): ZoneInfo(key) or
        # ZoneInfo.no_cache(key), which only read a time-zone file by its validated key.
        _names("zoneinfo", "ZoneInfo._unpickle"),
        _names("re", "_compile"),
        _names("dateutil.relativedelta", "relativedelta"),
        # Building a path object does no I/O; the methods that write are denied above.
        _in_each(_PATH_MODULES, f"PurePath PurePosixPath PureWindowsPath {_PATH_CLASSES}"),
    ),
    _group(
        "rebuilds an object from vetted globals (protocol 0-1 objects, protocol 2 bytes); "
        "it calls nothing the pickle could not call directly",
        _names("copyreg", "_reconstructor"),
        _names("_codecs", "encode"),
    ),
    _group(
        "a standard exception (results of worker processes carry them)",
        _names("builtins", _STANDARD_EXCEPTIONS),
    ),
    _group(
        "a result container of joblib, multiprocessing or concurrent.futures workers",
        _names("concurrent.futures.process", "_ResultItem _rebuild_exc"),
        _names("joblib.externals.loky.process_executor", "_ResultItem _rebuild_exc"),
        _names("multiprocessing.pool", "rebuild_exc"),
    ),
    _group(
        "numpy arrays, dtypes, scalars, ufuncs and random generators",
        _names("numpy", f"dtype ndarray matrix {_NUMPY_SCALARS} {_NUMPY_UFUNCS}"),
        _names("numpy._core.multiarray", "_reconstruct scalar"),
        _names("numpy._core.numeric", "_frombuffer"),
        _names("numpy._core._internal", "_convert_to_stringdtype_kwargs"),
        _names("numpy.dtypes", "StringDType"),
        _names("numpy.matrixlib.defmatrix", "matrix"),
        _in_each("numpy.ma numpy.ma.core", "MaskedArray"),
        _names("numpy.ma.core", "_mareconstruct"),
        _names("numpy.random", "__RandomState_ctor"),  # numpy 1.x
        _names("numpy.random._pickle", "__bit_generator_ctor __generator_ctor __randomstate_ctor"),
        _names("numpy.random.bit_generator", "SeedSequence __pyx_unpickle_SeedSequence"),
        _names("numpy.random._mt19937", "MT19937"),
        _names("numpy.random._pcg64", "PCG64 PCG64DXSM"),
        _names("numpy.random._philox", "Philox"),
        _names("numpy.random._sfc64", "SFC64"),
        _names("numpy.random.mtrand", "RandomState"),
        _names("numpy.random._generator", "Generator"),
    ),
    _group(
        "pandas frames, series, indexes, arrays, dtypes and scalars",
        _names(
            "pandas",
            f"""DataFrame Series Index RangeIndex MultiIndex DatetimeIndex TimedeltaIndex
            PeriodIndex CategoricalIndex IntervalIndex Categorical CategoricalDtype
            DatetimeTZDtype PeriodDtype IntervalDtype SparseDtype ArrowDtype NA Period
            Interval DateOffset {_NULLABLE_DTYPES}""",
        ),
        _names(
            "pandas.arrays",
            """ArrowStringArray ArrowExtensionArray BooleanArray DatetimeArray FloatingArray
            IntegerArray IntervalArray NumpyExtensionArray PeriodArray SparseArray StringArray
            TimedeltaArray""",
        ),
        _names("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        _names("pandas._libs.internals", "_unpickle_block"),
        _names("pandas._libs.interval", "Interval __pyx_unpickle_IntervalMixin"),
        _names("pandas._libs.sparse", "IntIndex BlockIndex"),
        _names("pandas._libs.missing", "NA"),
        _names("pandas._libs.tslibs.nattype", "_nat_unpickle"),
        _names("pandas._libs.tslibs.offsets", _PANDAS_OFFSETS),
        _names("pandas._libs.tslibs.period", "Period"),
        _names("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
        _names("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        _names("pandas.core.indexes.base", "_new_Index Index"),
        _names("pandas.core.indexes.datetimes", "_new_DatetimeIndex DatetimeIndex"),
        _names("pandas.core.indexes.interval", "_new_IntervalIndex IntervalIndex"),
        _names("pandas.core.indexes.timedeltas", "_new_TimedeltaIndex TimedeltaIndex"),
        _names("pandas.core.indexes.period", "_new_PeriodIndex PeriodIndex"),
        _names("pandas.core.internals.managers", "BlockManager SingleBlockManager"),
        # The same classes as pandas < 3 names them (by their defining module).
        _names("pandas.core.frame", "DataFrame"),
        _names("pandas.core.series", "Series"),
        _names("pandas.core.indexes.range", "RangeIndex"),
        _names("pandas.core.indexes.multi", "MultiIndex"),
        _names("pandas.core.indexes.category", "CategoricalIndex"),
        _names("pandas.core.arrays.categorical", "Categorical"),
        _names(
            "pandas.core.dtypes.dtypes",
            """CategoricalDtype DatetimeTZDtype PeriodDtype IntervalDtype SparseDtype ArrowDtype
            NumpyEADtype""",
        ),
        _names("pandas.core.arrays.boolean", "BooleanDtype BooleanArray"),
        _names(
            "pandas.core.arrays.integer",
            "IntegerArray Int8Dtype Int16Dtype Int32Dtype Int64Dtype UInt8Dtype UInt16Dtype "
            "UInt32Dtype UInt64Dtype",
        ),
        _names("pandas.core.arrays.floating", "FloatingArray Float32Dtype Float64Dtype"),
        _names("pandas.core.arrays.string_", "StringDtype StringArray"),
        _names("pandas.core.arrays.string_arrow", "ArrowStringArray"),
        _names("pandas.core.arrays.datetimes", "DatetimeArray"),
        _names("pandas.core.arrays.timedeltas", "TimedeltaArray"),
        _names("pandas.core.arrays.period", "PeriodArray"),
        _names("pandas.core.arrays.interval", "IntervalArray"),
        _names("pandas.core.arrays.sparse.array", "SparseArray"),
        _names("pandas.core.arrays.numpy_", "NumpyExtensionArray"),
        _names("pandas.core.arrays.arrow.array", "ArrowExtensionArray"),
    ),
    _group(
        "pyarrow arrays and types behind pandas string columns",
        _names("pyarrow.lib", "_restore_array py_buffer type_for_alias"),
    ),
    _group(
        "scipy sparse matrices and splines",
        _names("scipy.sparse._csr", "csr_matrix csr_array"),
        _names("scipy.sparse._csc", "csc_matrix csc_array"),
        _names("scipy.sparse._coo", "coo_matrix coo_array"),
        _names("scipy.sparse._dok", "dok_matrix dok_array"),
        _names("scipy.sparse._lil", "lil_matrix lil_array"),
        _names("scipy.interpolate._bsplines", "BSpline"),
        _names("scipy._lib.array_api_compat.numpy._aliases", "asarray"),
    ),
    _group(
        "scikit-learn estimators, pipelines and their fitted parts",
        _names(
            "sklearn._loss._loss",
            "CyHalfBinomialLoss CyHalfPoissonLoss CyHalfSquaredError CyHalfMultinomialLoss",
        ),
        _names("sklearn._loss.link", "IdentityLink Interval LogLink LogitLink MultinomialLogit"),
        _names(
            "sklearn._loss.loss",
            "HalfBinomialLoss HalfPoissonLoss HalfSquaredError HalfMultinomialLoss",
        ),
        _names(
            "sklearn.calibration",
            "CalibratedClassifierCV _CalibratedClassifier _SigmoidCalibration",
        ),
        _names("sklearn.cluster._agglomerative", "AgglomerativeClustering"),
        _names("sklearn.cluster._dbscan", "DBSCAN"),
        _names("sklearn.cluster._kmeans", "KMeans MiniBatchKMeans"),
        _names("sklearn.compose._column_transformer", "ColumnTransformer make_column_selector"),
        _names("sklearn.compose._target", "TransformedTargetRegressor"),
        _names("sklearn.decomposition._nmf", "NMF"),
        _names("sklearn.decomposition._pca", "PCA"),
        _names("sklearn.decomposition._truncated_svd", "TruncatedSVD"),
        _names(
            "sklearn.discriminant_analysis",
            "LinearDiscriminantAnalysis QuadraticDiscriminantAnalysis",
        ),
        _names("sklearn.dummy", "DummyClassifier DummyRegressor"),
        _names("sklearn.ensemble._bagging", "BaggingClassifier BaggingRegressor"),
        _names(
            "sklearn.ensemble._forest",
            "ExtraTreesClassifier ExtraTreesRegressor RandomForestClassifier RandomForestRegressor",
        ),
        _names("sklearn.ensemble._gb", "GradientBoostingClassifier GradientBoostingRegressor"),
        _names("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
        _names(
            "sklearn.ensemble._hist_gradient_boosting.gradient_boosting",
            "HistGradientBoostingClassifier HistGradientBoostingRegressor",
        ),
        _names("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
        _names("sklearn.ensemble._iforest", "IsolationForest"),
        _names("sklearn.ensemble._stacking", "StackingClassifier StackingRegressor"),
        _names("sklearn.ensemble._voting", "VotingClassifier VotingRegressor"),
        _names("sklearn.ensemble._weight_boosting", "AdaBoostClassifier AdaBoostRegressor"),
        _names("sklearn.feature_extraction._dict_vectorizer", "DictVectorizer"),
        _names(
            "sklearn.feature_extraction.text",
            "CountVectorizer HashingVectorizer TfidfTransformer TfidfVectorizer",
        ),
        _names("sklearn.feature_selection._from_model", "SelectFromModel"),
        _names("sklearn.feature_selection._rfe", "RFE"),
        _names(
            "sklearn.feature_selection._univariate_selection",
            "SelectKBest f_classif f_regression chi2",
        ),
        _names("sklearn.feature_selection._variance_threshold", "VarianceThreshold"),
        _names("sklearn.gaussian_process._gpr", "GaussianProcessRegressor"),
        _names(
            "sklearn.gaussian_process.kernels", "ConstantKernel Product Sum RBF WhiteKernel Matern"
        ),
        _names("sklearn.impute._base", "MissingIndicator SimpleImputer"),
        _names("sklearn.impute._iterative", "IterativeImputer _ImputerTriplet"),
        _names("sklearn.impute._knn", "KNNImputer"),
        _names("sklearn.kernel_approximation", "RBFSampler"),
        _names("sklearn.linear_model._base", "LinearRegression"),
        _names("sklearn.linear_model._bayes", "BayesianRidge"),
        _names("sklearn.linear_model._coordinate_descent", "ElasticNet Lasso LassoCV ElasticNetCV"),
        _names("sklearn.linear_model._glm.glm", "PoissonRegressor"),
        _names("sklearn.linear_model._huber", "HuberRegressor"),
        _names("sklearn.linear_model._logistic", "LogisticRegression LogisticRegressionCV"),
        _names("sklearn.linear_model._perceptron", "Perceptron"),
        _names("sklearn.linear_model._ridge", "Ridge RidgeCV RidgeClassifier"),
        _names(
            "sklearn.linear_model._sgd_fast",
            "Hinge SquaredHinge ModifiedHuber EpsilonInsensitive SquaredEpsilonInsensitive",
        ),
        _names("sklearn.linear_model._stochastic_gradient", "SGDClassifier SGDRegressor"),
        _names(
            "sklearn.metrics._classification",
            "f1_score accuracy_score precision_score recall_score log_loss",
        ),
        _names("sklearn.metrics._regression", "mean_squared_error mean_absolute_error r2_score"),
        _names("sklearn.metrics._ranking", "roc_auc_score average_precision_score"),
        _names("sklearn.metrics._scorer", "_PassthroughScorer _Scorer _MultimetricScorer"),
        _names(
            "sklearn.metrics._dist_metrics",
            "EuclideanDistance64 ManhattanDistance64 ChebyshevDistance64 MinkowskiDistance64 "
            "newObj",
        ),
        _names("sklearn.model_selection._search", "GridSearchCV RandomizedSearchCV"),
        _names("sklearn.model_selection._split", "StratifiedKFold KFold"),
        _names("sklearn.multiclass", "OneVsRestClassifier"),
        _names("sklearn.multioutput", "MultiOutputRegressor"),
        _names("sklearn.naive_bayes", "GaussianNB MultinomialNB"),
        _names("sklearn.neighbors._ball_tree", "BallTree newObj"),
        _names("sklearn.neighbors._classification", "KNeighborsClassifier"),
        _names("sklearn.neighbors._kd_tree", "KDTree newObj"),
        _names("sklearn.neighbors._regression", "KNeighborsRegressor"),
        _names("sklearn.neighbors._unsupervised", "NearestNeighbors"),
        _names("sklearn.neural_network._multilayer_perceptron", "MLPClassifier MLPRegressor"),
        _names("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer SGDOptimizer"),
        _names("sklearn.pipeline", "FeatureUnion Pipeline"),
        _names(
            "sklearn.preprocessing._data",
            """MaxAbsScaler MinMaxScaler Normalizer PowerTransformer QuantileTransformer
            RobustScaler StandardScaler""",
        ),
        _names("sklearn.preprocessing._discretization", "KBinsDiscretizer"),
        _names("sklearn.preprocessing._encoders", "OneHotEncoder OrdinalEncoder"),
        _names("sklearn.preprocessing._function_transformer", "FunctionTransformer"),
        _names("sklearn.preprocessing._label", "LabelBinarizer LabelEncoder"),
        _names("sklearn.preprocessing._polynomial", "PolynomialFeatures SplineTransformer"),
        _names("sklearn.preprocessing._target_encoder", "TargetEncoder"),
        _names("sklearn.svm._classes", "LinearSVC LinearSVR NuSVC SVC SVR"),
        _names(
            "sklearn.tree._classes",
            "DecisionTreeClassifier DecisionTreeRegressor ExtraTreeClassifier ExtraTreeRegressor",
        ),
        _names("sklearn.tree._tree", "Tree"),
        _names("sklearn.utils._bunch", "Bunch"),
    ),
    _group(
        "joblib's array wrapper (the array data follows it in the file)",
        _names("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ),
    _group(
        "dill's array rebuilder (calls a vetted global, then sets its state, like BUILD)",
        _names("dill._dill", "_create_array"),
    ),
    _group(
        "torch tensors, storages, dtypes and parameters (torch's own weights_only list)",
        _in_each("torch torch.cuda", f"{_TORCH_STORAGES} {_TORCH_TENSORS}"),
        _names("torch", _TORCH_QUANTIZED_STORAGES),
        _names("torch", f"Size Tensor device {_TORCH_DTYPES}"),
        _names(
            "torch._utils",
            """_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter
            _rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor
            _rebuild_nested_tensor _rebuild_meta_tensor_no_storage _rebuild_wrapper_subclass
            _rebuild_device_tensor_from_numpy _rebuild_device_tensor_from_cpu_tensor""",
        ),
        _names("torch._tensor", "_rebuild_from_type_v2"),
        _names("torch.nn.parameter", "Parameter"),
        _names("torch.storage", "TypedStorage UntypedStorage"),
        _names("torch.serialization", "_get_layout"),
    ),
    _group(
        "torch layers, activations and optimizers of a pickled nn.Module",
        _names(
            "torch.nn.modules.activation",
            """ELU GELU GLU Hardswish Hardtanh LeakyReLU LogSoftmax Mish MultiheadAttention
            PReLU ReLU ReLU6 SiLU Sigmoid Softmax Softplus Softsign Tanh Threshold""",
        ),
        _names("torch.nn.modules.batchnorm", "BatchNorm1d BatchNorm2d BatchNorm3d"),
        _names(
            "torch.nn.modules.container",
            "ModuleDict ModuleList ParameterDict ParameterList Sequential",
        ),
        _names(
            "torch.nn.modules.conv",
            "Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d",
        ),
        _names("torch.nn.modules.distance", "CosineSimilarity"),
        _names("torch.nn.modules.dropout", "Dropout Dropout1d Dropout2d Dropout3d"),
        _names("torch.nn.modules.flatten", "Flatten Unflatten"),
        _names("torch.nn.modules.instancenorm", "InstanceNorm1d InstanceNorm2d"),
        _names(
            "torch.nn.modules.linear", "Bilinear Identity Linear NonDynamicallyQuantizableLinear"
        ),
        _names(
            "torch.nn.modules.loss",
            """BCELoss BCEWithLogitsLoss CrossEntropyLoss HuberLoss KLDivLoss L1Loss MSELoss
            NLLLoss SmoothL1Loss""",
        ),
        _names("torch.nn.modules.normalization", "GroupNorm LayerNorm RMSNorm"),
        _names("torch.nn.modules.padding", "ZeroPad2d"),
        _names("torch.nn.modules.pixelshuffle", "PixelShuffle"),
        _names(
            "torch.nn.modules.pooling",
            "AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveMaxPool2d AvgPool1d AvgPool2d "
            "MaxPool1d MaxPool2d",
        ),
        _names("torch.nn.modules.rnn", "GRU LSTM RNN"),
        _names("torch.nn.modules.sparse", "Embedding EmbeddingBag"),
        _names(
            "torch.nn.modules.transformer",
            """Transformer TransformerDecoder TransformerDecoderLayer TransformerEncoder
            TransformerEncoderLayer""",
        ),
        _names("torch.nn.modules.upsampling", "Upsample"),
        _names("torch.nn.functional", "relu gelu silu tanh sigmoid"),
        _names("torch._C._nn", "gelu"),
        _names("torch.optim.adam", "Adam"),
        _names("torch.optim.adamw", "AdamW"),
        _names("torch.optim.sgd", "SGD"),
    ),
    _group(
        "how pyspark returns rows to the driver (every collect() of a DataFrame)",
        # _parse_datatype_json_string parses a schema from JSON into DataType objects;
        # _create_row_inbound_converter(data_type) only returns a closure calling
        # data_type.fromInternal on the row's values, a DataType the same stream built
        # from globals that are themselves checked.
        _names("pyspark.sql.types", "_parse_datatype_json_string _create_row_inbound_converter"),
    ),
)
"""Reviewed safe globals, by reason. Exact names only: no prefixes, no wildcards."""


def _reasons_by_global(groups: Iterable[GlobalGroup]) -> dict[Pair, str]:
    return {pair: group.reason for group in groups for pair in group.globals}


def _reasons_by_module(groups: Iterable[GlobalGroup]) -> dict[str, str]:
    return {module: group.reason for group in groups for module in group.modules}


_DANGER_BY_GLOBAL = _reasons_by_global(DANGEROUS_GROUPS)
_DANGER_BY_MODULE = _reasons_by_module(DANGEROUS_GROUPS)
_SAFE_BY_GLOBAL = _reasons_by_global(SAFE_GROUPS)

DANGEROUS_GLOBALS: frozenset[Pair] = frozenset(_DANGER_BY_GLOBAL)
"""Exact ``(module, name)`` pairs that are dangerous."""
DANGEROUS_MODULES: frozenset[str] = frozenset(_DANGER_BY_MODULE)
"""Modules whose every name (and every submodule) is dangerous."""
SAFE_GLOBALS: frozenset[Pair] = frozenset(_SAFE_BY_GLOBAL)
"""Exact ``(module, name)`` pairs reviewed as safe."""


# --- gadgets judged by their arguments --------------------------------------------------------

DILL_VALUE_TYPES: dict[str, type] = {
    "bool": bool, "bytearray": bytearray, "bytes": bytes, "complex": complex, "dict": dict,
    "float": float, "frozenset": frozenset, "int": int, "list": list, "object": object,
    "range": range, "set": set, "slice": slice, "str": str, "tuple": tuple,
    "NoneType": type(None), "EllipsisType": type(Ellipsis),
    "NotImplementedType": type(NotImplemented),
}  # fmt: skip
"""Names under which ``dill._dill._load_type(name)`` hands out a plain value type.

The one list of "value types" both guards use: the static scanner accepts
``_load_type(name)`` for these constant names, the runtime guard's neutralised
``_load_type`` hands out these types only (not ``CodeType``, ``FunctionType``,
``type``, ``partial``, operator getters, open files...)."""

VALUE_TYPES: frozenset[type] = frozenset(DILL_VALUE_TYPES.values())

_GETATTR: Pair = ("builtins", "getattr")
_LOAD_TYPE: Pair = ("dill._dill", "_load_type")
_LOAD_FROM_BYTES: Pair = ("torch.storage", "_load_from_bytes")

ARGUMENT_CHECKED: frozenset[Pair] = frozenset({_GETATTR, _LOAD_TYPE, _LOAD_FROM_BYTES})
"""Dangerous-by-name globals that a benign file uses in one narrow, checkable way.

Reviewed, and kept this small on purpose: each one has a rule in
:func:`classify_call` about its constant arguments. Names are normalised."""


def classify_call(
    ref: GlobalRef, args: tuple[CallArgument, ...], *, allow: frozenset[str] = frozenset()
) -> GlobalVerdict:
    """One call of an :data:`ARGUMENT_CHECKED` global with constant ``args``: safe or dangerous.

    ``ref`` is normalised. Globals among ``args`` are as the pickle names them;
    an :class:`EmbeddedFile` carries the verdict of its own scan. Any other
    global, or any argument the rule does not expect, is dangerous.
    """
    pair = (ref.module, ref.name)
    if pair == _GETATTR:
        why, safe = _getattr_call(args, allow)
    elif pair == _LOAD_TYPE:
        why, safe = _load_type_call(args)
    elif pair == _LOAD_FROM_BYTES:
        why, safe = _load_from_bytes_call(args)
    else:
        why, safe = f"{ref.qualified} is not checked by its arguments", False
    if safe:
        return GlobalVerdict(ref, "safe", why)
    reason = _danger_of_pair(ref.module, ref.name) or "is not judged by its arguments"
    return GlobalVerdict(ref, "dangerous", f"{reason} (here: {why})")


def _getattr_call(args: tuple[CallArgument, ...], allow: frozenset[str]) -> tuple[str, bool]:
    if len(args) != 2 or not isinstance(args[0], GlobalRef) or not isinstance(args[1], str):
        return "getattr with arguments other than a global and a constant name", False
    owner, attribute = normalize(args[0].module, args[0].name), args[1]
    call = f"getattr({owner.qualified}, {attribute!r})"
    if not attribute.isidentifier() or attribute.startswith("__"):
        return f"{call} looks up a dunder or not a plain attribute name", False
    owner_verdict = classify(owner, allow=allow)
    if owner_verdict.kind != "safe":
        return f"{call} looks up an attribute of a global that is {owner_verdict.kind}", False
    target = classify(GlobalRef(owner.module, f"{owner.name}.{attribute}"), allow=allow)
    reached = target.ref.qualified
    if target.kind != "safe":
        return f"{call} reaches {reached}, which is {target.kind}", False
    return f"{call} reaches {reached}, which is safe", True


def _load_type_call(args: tuple[CallArgument, ...]) -> tuple[str, bool]:
    if len(args) != 1 or not isinstance(args[0], str):
        return "_load_type with an argument other than a constant type name", False
    call = f"_load_type({args[0]!r})"
    if args[0] not in DILL_VALUE_TYPES:
        return f"{call} hands out a type that is not a plain value type", False
    return f"{call} hands out a plain value type", True


def _load_from_bytes_call(args: tuple[CallArgument, ...]) -> tuple[str, bool]:
    if len(args) != 1 or not isinstance(args[0], EmbeddedFile):
        return "_load_from_bytes of something other than constant bytes", False
    embedded = args[0]
    where = f"the bytes at offset {embedded.position}"
    if embedded.verdict is None:
        return f"_load_from_bytes of {where}, which could not be scanned", False
    if embedded.verdict != "safe":
        return f"_load_from_bytes of {where}, which scan {embedded.verdict}", False
    return f"_load_from_bytes of {where}, which scan safe (a nested torch file)", True


# --- normalisation -------------------------------------------------------------------------

# Packages that renamed a module, leaving the old name as an alias. The static
# scanner sees the old spelling in old files; both mean the same code.
_RENAMED_PACKAGES = (
    ("numpy.core", "numpy._core"),
    ("torch.tensor", "torch._tensor"),
    ("dill.dill", "dill._dill"),
)


def python3_names(module: str, name: str) -> Pair:
    """The names the unpickler imports for a global written by Python 2.

    The same tables and order as ``pickle.Unpickler.find_class`` with
    ``fix_imports`` (``__builtin__`` -> ``builtins``, ``copy_reg`` ->
    ``copyreg``, ``__builtin__.xrange`` -> ``builtins.range``, ...).
    """
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def normalize(module: str, name: str) -> GlobalRef:
    """The global a pickle names, in the spelling the lists use."""
    module, name = python3_names(module, name)
    for old, new in _RENAMED_PACKAGES:
        if module == old or module.startswith(old + "."):
            module = new + module[len(old) :]
            break
    return GlobalRef(module, name)


# --- classification ------------------------------------------------------------------------


DANGEROUS_OVERRIDE = "!"
"""Marks a dangerous global in an ``allow`` set as explicitly allowed: ``"!os:system"``.

No global name starts with it, so one ``allow`` set carries both lists through the
scanner and its cache key (see :func:`allow_list`)."""


def allow_list(allow: Iterable[str], dangerous: Iterable[str] = ()) -> frozenset[str]:
    """The ``allow`` set :func:`classify` takes: the policy's ``pickles.allow`` names, plus
    its ``pickles.allow_dangerous`` overrides (exact names; a person confirmed each one)."""
    return frozenset(allow) | {DANGEROUS_OVERRIDE + name for name in dangerous}


def policy_allow_list(policy: Policy) -> frozenset[str]:
    """:func:`allow_list` of a policy's ``pickles.allow`` and ``pickles.allow_dangerous``."""
    return allow_list(policy["pickles.allow"], policy["pickles.allow_dangerous"])


class _Unresolved:
    """No run-time object is known for the global (static analysis)."""


UNRESOLVED = _Unresolved()


def classify(
    ref: GlobalRef, *, allow: frozenset[str] = frozenset(), target: object = UNRESOLVED
) -> GlobalVerdict:
    """Dangerous, safe or unknown, in that order: dangerous always wins.

    ``allow`` holds the policy's extra ``'module:name'`` globals (exact names), and
    the dangerous ones explicitly allowed, marked with :data:`DANGEROUS_OVERRIDE`.
    ``target``, when given, is the object the global resolves to at run time
    (see :func:`resolve`): it is dangerous when it *is* a dangerous object,
    whatever name led to it (re-exports, aliases, dotted traversal).
    """
    reason = dangerous_reason(ref.module, ref.name)
    if reason is None and not isinstance(target, _Unresolved):
        reason = _dangerous_target(target)
    if reason is not None:
        if DANGEROUS_OVERRIDE + ref.qualified in allow:
            return GlobalVerdict(ref, "safe", f"{reason}; allowed by an explicit override")
        return GlobalVerdict(ref, "dangerous", reason)
    safe_reason = _SAFE_BY_GLOBAL.get((ref.module, ref.name))
    if safe_reason is not None:
        return GlobalVerdict(ref, "safe", safe_reason)
    if ref.qualified in allow:
        return GlobalVerdict(ref, "safe", "allowed by name in the policy ([pickles] allow)")
    return GlobalVerdict(ref, "unknown", "not on the reviewed list of safe globals")


def dangerous_reason(module: str, name: str) -> str | None:
    """Why ``module:name`` is dangerous by its names alone, or None."""
    reason = _danger_of_pair(module, name)
    if reason is not None:
        return reason
    segments = name.split(".")
    if any(
        _is_private_dunder(segment, last=i == len(segments) - 1)
        for i, segment in enumerate(segments)
    ):
        return "reaches a dunder attribute (__globals__, __subclasses__, ...), a way to any object"
    for traversed_module, traversed_name in _dotted_candidates(module, segments):
        reason = _danger_of_pair(traversed_module, traversed_name)
        if reason is not None:
            return f"resolves to {traversed_module}.{traversed_name}, which {reason}"
    return None


def _danger_of_pair(module: str, name: str) -> str | None:
    reason = _DANGER_BY_GLOBAL.get((module, name))
    if reason is not None:
        return reason
    return dangerous_module_reason(module)


def dangerous_module_reason(module: str) -> str | None:
    """Why every name in ``module`` is dangerous (it or a parent package is listed), or None."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        reason = _DANGER_BY_MODULE.get(".".join(parts[:end]))
        if reason is not None:
            return f"{reason} (module {'.'.join(parts[:end])})"
    return None


def _is_private_dunder(segment: str, *, last: bool) -> bool:
    # ``Class.__new__`` as the final segment only allocates an object, which
    # NEWOBJ does anyway; every other dunder is a step towards arbitrary objects.
    is_dunder = len(segment) > 4 and segment.startswith("__") and segment.endswith("__")
    return is_dunder and not (last and segment == "__new__")


def _dotted_candidates(module: str, segments: list[str]) -> Iterator[Pair]:
    """Every ``(module, name)`` a dotted name could reach by attribute traversal.

    ``("pathlib", "os.system")`` may be ``pathlib.os.system``, ``os.system`` or
    ``pathlib.os:system``: a submodule or an imported module is reachable as an
    attribute, so each prefix of the path, and each of its tails, may name a module.
    """
    path = [*module.split("."), *segments]
    first_name_segment = len(path) - len(segments)
    for split in range(first_name_segment + 1, len(path)):
        name = ".".join(path[split:])
        for start in range(split):
            yield ".".join(path[start:split]), name


# --- run-time resolution -------------------------------------------------------------------


def resolve(module: str, name: str) -> object:
    """The object an unpickler gets for ``module:name``, imported the way it would.

    Only for the runtime guard, for a global that the unpickler is about to
    import anyway. Raises what the import or attribute lookup raises.
    """
    module, name = python3_names(module, name)
    __import__(module)
    target: object = sys.modules[module]
    for part in name.split("."):
        target = getattr(target, part)
    return target


_CODE_OBJECT_TYPES = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
)


def _dangerous_target(target: object) -> str | None:
    if isinstance(target, types.ModuleType):
        return dangerous_module_reason(target.__name__)
    canonical = _canonical_pair(target)
    if canonical is not None:
        reason = _danger_of_pair(*canonical)
        if reason is not None:
            return f"is {canonical[0]}.{canonical[1]}, which {reason}"
    return _denied_object_reason(target)


def _canonical_pair(target: object) -> Pair | None:
    """Where a class or function is defined: ``(__module__, __qualname__)``."""
    if not isinstance(target, _CODE_OBJECT_TYPES):
        return None
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return module, qualname
    return None


def _denied_object_reason(target: object) -> str | None:
    """The deny-list entry that is this very object (an alias or re-export of it)."""
    denied = _denied_objects()
    function = target.__func__ if isinstance(target, types.MethodType) else target
    for candidate in (target, function):
        entry = denied.get(id(candidate))
        if entry is not None and entry[0] is candidate:
            (module, name), reason = entry[1], _DANGER_BY_GLOBAL[entry[1]]
            return f"is {module}.{name}, which {reason}"
    return None


_denied_cache: tuple[int, dict[int, tuple[object, Pair]]] = (-1, {})


def _denied_objects() -> dict[int, tuple[object, Pair]]:
    """Deny-list objects of the modules imported so far, by identity.

    Rebuilt when the number of imported modules changes: looking up some 700
    names costs milliseconds, and a pickle's unknown globals come in bursts.
    """
    global _denied_cache
    generation, objects = _denied_cache
    if generation == len(sys.modules):
        return objects
    objects = {}
    for pair in _DANGER_BY_GLOBAL:
        found = loaded_attribute(*pair)
        if found is not None:
            objects.setdefault(id(found), (found, pair))
    _denied_cache = (len(sys.modules), objects)
    return objects


def loaded_attribute(module: str, name: str) -> object | None:
    """``module.name`` without importing or running any code, if it is already there."""
    found: object = sys.modules.get(module)
    for part in name.split("."):
        if found is None:
            return None
        found = getattr_static(found, part, None)
    if isinstance(found, (staticmethod, classmethod)):
        return found.__func__
    return found
