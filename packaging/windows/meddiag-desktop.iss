; Inno Setup 6 script: the per-user Windows installer of MedDiag Desktop.
;
; NOT BUILT OR RUN YET: the project's CI machines are Linux only (packaging/README.md, "Windows").
;
; Made by packaging/windows/build.ps1, which first freezes the app with PyInstaller into
; build\dist\meddiag-desktop (meddiag-desktop.exe, meddiag.exe, _internal\) and then runs:
;
;   ISCC.exe /DAppVersion=0.1.0 packaging\windows\meddiag-desktop.iss
;
; Defines (ISCC /Dname=value):
;   AppVersion         required: pyproject.toml [project].version
;   AppNumericVersion  optional: the numeric part of it for the file's version resource
;                      (Windows wants 1 to 4 integers; build.ps1 strips a PEP 440 suffix such as rc1)
;   SourceFolder       optional: the PyInstaller folder (default ..\..\build\dist\meddiag-desktop)
;   OutputFolder       optional: where the setup .exe goes (default ..\..\build\out)
; Relative paths are relative to this file's folder.
;
; Needs Inno Setup 6.3 or later (the x64compatible architecture identifier).
; Per user, no administrator rights: PrivilegesRequired=lowest makes {autopf} the user's
; %LOCALAPPDATA%\Programs, {autoprograms} the user's Start menu and {autodesktop} the user's desktop.

#ifndef AppVersion
  #error Pass the version: ISCC.exe /DAppVersion=X.Y.Z meddiag-desktop.iss (packaging\windows\build.ps1 does)
#endif
#ifndef AppNumericVersion
  #define AppNumericVersion AppVersion
#endif
#ifndef SourceFolder
  #define SourceFolder "..\..\build\dist\meddiag-desktop"
#endif
#ifndef OutputFolder
  #define OutputFolder "..\..\build\out"
#endif

#define AppName "MedDiag Desktop"
#define AppExe "meddiag-desktop.exe"
#define CliExe "meddiag.exe"

[Setup]
; The AppId names the installation in Windows' uninstall list: never change it, or an update
; installs beside the old version instead of over it. ({{ is Inno's escape for one {.)
AppId={{F0961649-46D5-445B-B540-F54F10FA0986}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=MedDiag Desktop team
AppComments=Offline radiology review workstation. Not a medical device; not for clinical use.
VersionInfoVersion={#AppNumericVersion}
VersionInfoProductName={#AppName}
VersionInfoDescription={#AppName} setup
PrivilegesRequired=lowest
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
DefaultGroupName={#AppName}
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
; The not-a-medical-device and offline notice, shown before the folder is chosen.
InfoBeforeFile=notice.txt
SetupIconFile=..\..\resources\icons\meddiag-desktop.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
WizardStyle=modern
OutputDir={#OutputFolder}
OutputBaseFilename=meddiag-desktop-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
LZMAUseSeparateProcess=yes
; The optional PATH entry (below): tell Explorer to re-read the environment afterwards.
ChangesEnvironment=yes
; Close a running MedDiag Desktop before its files are replaced (Restart Manager).
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the program folder to my PATH (for the ""meddiag"" command line tool)"; GroupDescription: "Command line:"; Flags: unchecked
Name: "selftest"; Description: "Run the self-test after installing (about half a minute, offline)"; GroupDescription: "Check:"; Flags: unchecked

[InstallDelete]
; An update must not leave the previous build's libraries beside the new ones: PyInstaller's
; _internal folder is replaced whole, never merged.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceFolder}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Comment: "Offline radiology review workstation (not a medical device)"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent unchecked

[Code]
{ The user's PATH lives in HKEY_CURRENT_USER\Environment, value Path. The installer adds the
  program folder (which holds only meddiag.exe and meddiag-desktop.exe; PyInstaller 6 keeps the
  DLLs in _internal\, so nothing else lands on PATH) when the addtopath task is chosen, and the
  uninstaller removes every entry naming that folder, whether or not it was chosen. }

const
  EnvironmentKey = 'Environment';

function SamePathEntry(A, B: String): Boolean;
begin
  Result := CompareText(RemoveBackslashUnlessRoot(Trim(A)), RemoveBackslashUnlessRoot(Trim(B))) = 0;
end;

{ Paths without any entry naming Dir (empty entries dropped too). }
function PathWithout(Paths, Dir: String): String;
var
  Rest, Part: String;
  Cut: Integer;
begin
  Result := '';
  Rest := Paths;
  while Rest <> '' do
  begin
    Cut := Pos(';', Rest);
    if Cut = 0 then
    begin
      Part := Rest;
      Rest := '';
    end
    else
    begin
      Part := Copy(Rest, 1, Cut - 1);
      Delete(Rest, 1, Cut);
    end;
    if (Trim(Part) <> '') and not SamePathEntry(Part, Dir) then
    begin
      if Result <> '' then
        Result := Result + ';';
      Result := Result + Part;
    end;
  end;
end;

function UserPath: String;
var
  Paths: String;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, EnvironmentKey, 'Path', Paths) then
    Paths := '';
  Result := Paths;
end;

procedure AddToUserPath(Dir: String);
var
  Paths: String;
begin
  Paths := PathWithout(UserPath, Dir);
  if Paths <> '' then
    Paths := Paths + ';';
  Paths := Paths + Dir;
  if RegWriteExpandStringValue(HKEY_CURRENT_USER, EnvironmentKey, 'Path', Paths) then
    Log('Added to the user PATH: ' + Dir)
  else
    Log('Could not write the user PATH');
end;

procedure RemoveFromUserPath(Dir: String);
var
  Before, After: String;
begin
  Before := UserPath;
  After := PathWithout(Before, Dir);
  if After = Before then
    exit;
  if After = '' then
    RegDeleteValue(HKEY_CURRENT_USER, EnvironmentKey, 'Path')
  else
    RegWriteExpandStringValue(HKEY_CURRENT_USER, EnvironmentKey, 'Path', After);
  Log('Removed from the user PATH: ' + Dir);
end;

{ The optional post-install check: the same self-test as packaging/build.sh runs on Linux
  (offscreen, demo case and database in a temporary folder, the user's data untouched).
  meddiag-desktop.exe is a windowed program with no console, so its one-line summary is
  caught through cmd's redirection into a temporary file and shown with the exit code. }
procedure RunSelfTest;
var
  OutFile, Command: String;
  Output: AnsiString;
  ResultCode: Integer;
begin
  OutFile := ExpandConstant('{tmp}\self-test.txt');
  Command := '/C ""' + ExpandConstant('{app}\{#AppExe}') + '" --self-test > "' + OutFile + '" 2>&1"';
  WizardForm.StatusLabel.Caption := 'Running the self-test (about half a minute)...';
  if not Exec(ExpandConstant('{cmd}'), Command, ExpandConstant('{app}'), SW_HIDE,
              ewWaitUntilTerminated, ResultCode) then
  begin
    SuppressibleMsgBox('The self-test could not be started: ' + SysErrorMessage(ResultCode),
                       mbError, MB_OK, IDOK);
    exit;
  end;
  if not LoadStringFromFile(OutFile, Output) then
    Output := '(no output)';
  Log('Self-test exit code ' + IntToStr(ResultCode) + ': ' + String(Output));
  if ResultCode = 0 then
    SuppressibleMsgBox('The self-test passed.' + #13#10#13#10 + String(Output), mbInformation, MB_OK, IDOK)
  else
    SuppressibleMsgBox('The self-test FAILED (exit code ' + IntToStr(ResultCode) + ').' + #13#10#13#10
                       + String(Output) + #13#10
                       + 'Please report this message; the installation itself is complete.',
                       mbError, MB_OK, IDOK);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if CurStep = ssPostInstall then
  begin
    if WizardIsTaskSelected('addtopath') then
      AddToUserPath(ExpandConstant('{app}'))
    else
      RemoveFromUserPath(ExpandConstant('{app}'));
    if WizardIsTaskSelected('selftest') then
      RunSelfTest;
  end;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  { User data (%LOCALAPPDATA%\MedDiag\MedDiag Desktop, HKCU\Software\MedDiag) stays. }
  if CurUninstallStep = usUninstall then
    RemoveFromUserPath(ExpandConstant('{app}'));
end;
