# Build MedDiag Desktop for Windows x64: the PyInstaller one-folder app, its self-test, and the
# per-user Inno Setup installer. The Windows counterpart of packaging/build.sh.
#
# NOT BUILT OR RUN YET: the project's CI machines are Linux only. Whoever first runs this on
# Windows fixes what breaks and updates packaging/README.md ("Windows").
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
#
# Needs: Python 3.11 x64 (the py launcher's "py -3.11", or MEDDIAG_PYTHON=path\to\python.exe),
# Inno Setup 6.3+ (ISCC.exe on PATH, in its default folder, or MEDDIAG_ISCC=path\to\ISCC.exe),
# and for signing the Windows SDK's signtool.exe.
#
# Outputs, as on Linux under build\ (ignored by git):
#   build\dist\meddiag-desktop\                          the frozen folder
#   build\out\self-test.txt                              the frozen self-test's line
#   build\out\meddiag-desktop-<version>-windows-x64-setup.exe
#
# Environment:
#   MEDDIAG_GPU_BUILD=1        keep onnxruntime's CUDA/TensorRT providers (packaging/README.md)
#   MEDDIAG_SIGN_CERT_SHA1     thumbprint of the code-signing certificate in the certificate
#                              store; signing is skipped when unset
#   MEDDIAG_TIMESTAMP_URL      RFC 3161 timestamp server of the certificate's vendor (required
#                              with MEDDIAG_SIGN_CERT_SHA1)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$Repo = (Resolve-Path (Join-Path $PSScriptRoot '..\..')).Path
Set-Location $Repo
$Build = Join-Path $Repo 'build'
$Out = Join-Path $Build 'out'
$Name = 'meddiag-desktop'
$Py = Join-Path $Repo '.venv\Scripts\python.exe'
$Started = Get-Date

function Step([string]$What) { Write-Host ("== {0:HH:mm:ss} {1}" -f (Get-Date), $What) }

# A native program's failure does not stop PowerShell 5.1 by itself: check every exit code.
function Invoke-Native {
    param([Parameter(Mandatory)][string]$Exe, [string[]]$Arguments = @())
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed (exit code $LASTEXITCODE)" }
}

# --- virtual environment ----------------------------------------------------------------------
if (-not (Test-Path $Py)) {
    Step 'virtual environment (.venv, with the dev extra)'
    if ($env:MEDDIAG_PYTHON) { Invoke-Native $env:MEDDIAG_PYTHON @('-m', 'venv', '.venv') }
    else { Invoke-Native 'py' @('-3.11', '-m', 'venv', '.venv') }
    Invoke-Native $Py @('-m', 'pip', 'install', '--quiet', '-e', '.[dev]')
}
# (Asked on stdout: Windows PowerShell 5.1 turns a native program's stderr into errors.)
$HasPyInstaller = & $Py -c "import importlib.util; print(importlib.util.find_spec('PyInstaller') is not None)"
if ($HasPyInstaller -ne 'True') { Invoke-Native $Py @('-m', 'pip', 'install', '--quiet', '-e', '.[dev]') }

$Version = (& $Py -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])").Trim()
if ($LASTEXITCODE -ne 0 -or -not $Version) { throw 'could not read [project].version from pyproject.toml' }
# The numeric part for Windows' file version resource (0.1.0rc1 -> 0.1.0).
if ($Version -notmatch '^\d+(\.\d+){0,3}') { throw "version $Version does not start with a number" }
$NumericVersion = $Matches[0]
Step "MedDiag Desktop $Version"

if (Test-Path $Out) { Remove-Item -Recurse -Force $Out }
New-Item -ItemType Directory -Force -Path $Out, (Join-Path $Build 'logs') | Out-Null

# --- licences, then the frozen folder ---------------------------------------------------------
Step 'third-party licences'
Invoke-Native $Py @('packaging\collect_licenses.py', (Join-Path $Build 'THIRD_PARTY_LICENSES'))

Step 'PyInstaller one-folder build'
$env:MEDDIAG_VERSION = $Version
$env:MEDDIAG_BUILD_DIR = $Build
Invoke-Native $Py @('-m', 'PyInstaller', '--noconfirm', '--log-level', 'WARN',
    '--distpath', (Join-Path $Build 'dist'), '--workpath', (Join-Path $Build 'pyinstaller'),
    'packaging\meddiag-desktop.spec')
$Folder = Join-Path $Build "dist\$Name"
foreach ($exe in "$Name.exe", 'meddiag.exe') {
    if (-not (Test-Path (Join-Path $Folder $exe))) { throw "PyInstaller made no $Folder\$exe" }
}

# --- optional signing of the programs (before they go into the installer) ---------------------
function Sign-Files([string[]]$Files) {
    if (-not $env:MEDDIAG_SIGN_CERT_SHA1) {
        Write-Host "signing skipped (MEDDIAG_SIGN_CERT_SHA1 is unset): $($Files -join ', ')"
        return
    }
    if (-not $env:MEDDIAG_TIMESTAMP_URL) { throw 'MEDDIAG_TIMESTAMP_URL is needed with MEDDIAG_SIGN_CERT_SHA1' }
    # signtool sign /fd SHA256 /tr <timestamp url> /td SHA256 /sha1 <thumbprint> FILE...
    # A certificate on a hardware token or in a cloud signing service (the rule for new
    # code-signing certificates) needs that vendor's options here instead of /sha1.
    Invoke-Native 'signtool.exe' (@('sign', '/fd', 'SHA256', '/tr', $env:MEDDIAG_TIMESTAMP_URL,
        '/td', 'SHA256', '/sha1', $env:MEDDIAG_SIGN_CERT_SHA1) + $Files)
    Invoke-Native 'signtool.exe' (@('verify', '/pa') + $Files)
}
Step 'sign the programs'
Sign-Files @((Join-Path $Folder "$Name.exe"), (Join-Path $Folder 'meddiag.exe'))

# --- the frozen self-test ---------------------------------------------------------------------
# meddiag-desktop.exe is a windowed program (no console): PowerShell would not wait for it and
# would not show its output, so it runs as a .NET process with stdout and stderr redirected.
# Unlike build.sh, nothing blocks the network here (no unshare/strace on Windows); see
# packaging/README.md for a firewall rule that does.
Step 'self-test of the frozen folder'
$psi = New-Object System.Diagnostics.ProcessStartInfo
$psi.FileName = Join-Path $Folder "$Name.exe"
$psi.Arguments = '--self-test'
$psi.WorkingDirectory = $Folder
$psi.UseShellExecute = $false
$psi.RedirectStandardOutput = $true
$psi.RedirectStandardError = $true
# As build.sh: look like a user's machine, not CI, so a pass means the app switched telemetry off.
foreach ($var in 'CI', 'GITHUB_ACTIONS', 'GITLAB_CI', 'TF_BUILD', 'JENKINS_URL', 'BUILDKITE', 'ORT_DISABLE_TELEMETRY') {
    if ($psi.EnvironmentVariables.ContainsKey($var)) { $psi.EnvironmentVariables.Remove($var) }
}
$psi.EnvironmentVariables['QT_QPA_PLATFORM'] = 'offscreen'
$proc = [System.Diagnostics.Process]::Start($psi)
$stdout = $proc.StandardOutput.ReadToEndAsync()
$stderr = $proc.StandardError.ReadToEndAsync()
$proc.WaitForExit()
$line = $stdout.Result.Trim()
Set-Content -Path (Join-Path $Build 'logs\self-test.stderr') -Value $stderr.Result
if ($proc.ExitCode -ne 0) {
    Write-Host $stderr.Result
    throw "the frozen self-test failed (exit code $($proc.ExitCode))"
}
if ($line -notmatch 'self-test passed') {
    throw "the frozen self-test exited 0 but printed no 'self-test passed' line: '$line'"
}
Set-Content -Path (Join-Path $Out 'self-test.txt') -Value $line
Write-Host $line

# --- the installer ----------------------------------------------------------------------------
Step 'Inno Setup installer'
$Iscc = $env:MEDDIAG_ISCC
if (-not $Iscc) {
    $found = Get-Command 'ISCC.exe' -ErrorAction SilentlyContinue
    if ($found) { $Iscc = $found.Source }
}
if (-not $Iscc) {
    foreach ($candidate in (Join-Path ${env:ProgramFiles(x86)} 'Inno Setup 6\ISCC.exe'),
                           (Join-Path $env:ProgramFiles 'Inno Setup 6\ISCC.exe'),
                           (Join-Path $env:LOCALAPPDATA 'Programs\Inno Setup 6\ISCC.exe')) {
        if (Test-Path $candidate) { $Iscc = $candidate; break }
    }
}
if (-not $Iscc) { throw 'ISCC.exe (Inno Setup 6) not found: install it or set MEDDIAG_ISCC' }
Invoke-Native $Iscc @("/DAppVersion=$Version", "/DAppNumericVersion=$NumericVersion",
    "/DSourceFolder=$Folder", "/DOutputFolder=$Out", 'packaging\windows\meddiag-desktop.iss')
$Setup = Join-Path $Out "$Name-$Version-windows-x64-setup.exe"
if (-not (Test-Path $Setup)) { throw "ISCC made no $Setup" }

Step 'sign the installer'
Sign-Files @($Setup)

$FolderMB = [math]::Round(((Get-ChildItem -Recurse -File $Folder | Measure-Object -Sum Length).Sum) / 1MB)
$SetupMB = [math]::Round((Get-Item $Setup).Length / 1MB, 1)
Step ("done in {0:N0} s: folder {1} MB, installer {2} MB: {3}" -f ((Get-Date) - $Started).TotalSeconds, $FolderMB, $SetupMB, $Setup)
